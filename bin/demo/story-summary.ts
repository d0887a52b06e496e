// What the flat-network story takes (StoryOptions) and what it found (StorySummary): the demo prints
// the summary, test/e2e/flat-network.test.ts asserts it.
import type { Outcome } from './mtls-checks.js';
import type { Topology, TopologyMode } from './topology.js';

export interface HandshakeRecord {
  readonly ok: boolean;
  /** pod names, `<cluster>-<generation>` */
  readonly from: string;
  readonly to: string;
  /** when the handshake started (ms since the epoch, the agent's clock: this machine's) */
  readonly at: number;
  readonly error?: string;
  readonly peer?: string;
  /** the common names of the chain the peer presented above its leaf, as the client's TLS stack built it */
  readonly path?: readonly string[];
}

/** The fields of `lanyard rotate status --json` the story records: `phase`, `next.action`, `next.safe`. */
export interface RotateStatusFields {
  readonly phase: number | 'steady';
  readonly action: string;
  readonly safe: boolean;
}

/** What opened the phase-4 gate: rotate status (as it said it), or the issuers' own bound passing. */
export interface OldLeavesGate extends RotateStatusFields {
  readonly openedBy: 'rotate-status' | 'issuers-bound';
  /** rotate status called it safe before the issuers' bound (switch + leaf lifetime + skew) */
  readonly early: boolean;
}

/** One renewal by a pod's proxy: ISO instants, the first two from the answer being renewed. */
export interface Renewal {
  /** its refreshAt: 70 % of the way to its valid_until, as the proxy computed it */
  readonly refreshAt: string;
  /** its valid_until: the certificate must be renewed before it */
  readonly validUntil: string;
  /** when the renewal call was made */
  readonly requestedAt: string;
  /** when the renewed certificate was in the pod's files */
  readonly answeredAt: string;
}

/** One phase of the rotation as it happened. */
export interface PhaseReport {
  readonly phase: number;
  readonly title: string;
  readonly startedAt: string;
  readonly durationMs: number;
  /** the pods in the mesh when the phase ended (each made handshakes to every pod of the other cluster) */
  readonly live: readonly string[];
  readonly handshakes: number;
  readonly failed: number;
  /** what `lanyard rotate status --json` said at the end of the phase */
  readonly status?: RotateStatusFields;
}

/** `openssl verify -x509_strict -purpose sslclient|sslserver` of the pods' leaves, by trust store. */
export interface LeafChecks {
  /** leaves answered with the cross certificate (after the switch, before the clean-up): checked against {A} and {B} */
  readonly withCross: number;
  readonly okUnderA: number;
  readonly okUnderB: number;
  /** leaves answered after the issuers stopped serving the cross certificate: checked against {B} */
  readonly withoutCross: number;
  readonly okWithoutCrossUnderB: number;
  /** which verifications failed (pod, serial, store, purpose) */
  readonly failures: readonly string[];
}

export interface StorySummary {
  readonly mode: TopologyMode;
  readonly crossCluster: {
    readonly openssl: Record<string, boolean>;
    readonly node: Record<string, boolean>;
    /** each side saw the other's SPIFFE URI SAN: the client the server's, the server the client's */
    readonly spiffeSeen: boolean;
  };
  /** each refused handshake with the reason the client saw (`code`), not only that it failed */
  readonly negatives: {
    readonly untrustedAnchor: Outcome;
    readonly wrongIdentity: Outcome;
    readonly expired: Outcome;
    /** openssl s_server refusing a client under an untrusted anchor: its X.509 verify error number */
    readonly opensslUntrustedClient: { readonly ok: boolean; readonly serverVerifyError?: number };
  };
  readonly rotation: {
    readonly phases: readonly PhaseReport[];
    readonly handshakes: number;
    readonly failed: number;
    readonly failures: readonly HandshakeRecord[];
    /** ok handshakes by `from->to` (pod names) and phase */
    readonly pairs: Record<string, Record<number, number>>;
    /** ok handshakes in which the client reached its anchor through the cross certificate */
    readonly viaCross: number;
    /** clients refused by a pod's listener during the rotation (each would be a failed handshake) */
    readonly listenerRefusals: number;
    /** what opened the phase-4 gate */
    readonly gate: OldLeavesGate;
    /** what rotate status said when it opened the phase-6 gate (no running proxy trusts only A) */
    readonly cleanupGate: RotateStatusFields;
    readonly durationMs: number;
  };
  readonly leafChecks: LeafChecks;
  /** how the pods got their certificates: the proxy-faithful client over TLS, from each cluster's issuer */
  readonly identity: {
    /** per pod (`<cluster>-<generation>`): every certificate its proxy got and every failed Certify */
    readonly pods: Record<
      string,
      {
        readonly cluster: string;
        readonly gen: string;
        /** the anchors (common names) its proxy read at start */
        readonly trusts: readonly string[];
        readonly certified: number;
        /** the ALPN protocols negotiated, de-duplicated: [false] when every call negotiated none */
        readonly alpn: readonly (string | false | null)[];
        /** the identity service's serving certificates the proxy accepted (serials) */
        readonly servedBy: readonly string[];
        readonly failed: number;
        readonly failures: readonly { kind: string; error: string }[];
        /** times its proxy or mTLS process was started again or exited before the pod was stopped */
        readonly restarts: number;
        /** each renewal (a Certify by the same proxy process after its first), with the answer it renewed */
        readonly renewals: readonly Renewal[];
      }
    >;
    /** per issuer: lanyard_tls_connections_total by outcome at the end (no_alpn: a proxy's connection) */
    readonly tlsConnections: Record<string, Record<string, number>>;
    /** a proxy started with the old anchor only, once the issuers serve under the new one with the cross certificate */
    readonly staleProxy: {
      readonly ok: boolean;
      readonly kind?: string;
      readonly code?: string;
      readonly error?: string;
    };
  };
  readonly finalCheckExit: number;
  readonly durationMs: number;
}

export interface StoryOptions {
  readonly mode?: TopologyMode;
  /** workload certificate lifetime; short, so that phase 4 of the rotation ends within the run */
  readonly leafLifetime?: string;
  /** handshakes per second per pod pair and direction during the rotation */
  readonly rate?: number;
  readonly say?: (title: string, detail?: string) => void;
  /** called once the topology exists, with a function that tears everything down (for signal handlers) */
  readonly onTopology?: (teardown: () => void, t: Topology, workDir: string) => void;
  /** stop after building the topology and starting the issuers and pods (hygiene tests) */
  readonly holdAfterSetup?: () => Promise<void>;
}
