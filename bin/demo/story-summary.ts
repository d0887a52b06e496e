// What the flat-network story takes (StoryOptions) and what it found (StorySummary): the demo prints
// the summary, test/e2e/flat-network.test.ts asserts it.
import type { Outcome } from './mtls-checks.js';
import type { Topology, TopologyMode } from './topology.js';

export interface HandshakeRecord {
  readonly ok: boolean;
  readonly from: string;
  readonly to: string;
  readonly error?: string;
  readonly peer?: string;
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
    readonly phases: readonly string[];
    readonly handshakes: number;
    readonly failed: number;
    readonly failures: readonly HandshakeRecord[];
    readonly durationMs: number;
  };
  /** how the pods got their certificates: the proxy-faithful client over TLS, from each cluster's issuer */
  readonly identity: {
    /** per pod: every certificate its proxy got (initial, renewals, after restarts) and every failed Certify */
    readonly pods: Record<
      string,
      {
        readonly certified: number;
        /** the ALPN protocols negotiated, de-duplicated: [false] when every call negotiated none */
        readonly alpn: readonly (string | false | null)[];
        /** the identity service's serving certificates the proxy accepted (serials) */
        readonly servedBy: readonly string[];
        readonly failed: number;
        readonly failures: readonly { kind: string; error: string }[];
        readonly restarts: number;
        /**
         * each renewal within one start of the proxy: ms between the previous answer's refreshAt (70 % of
         * its valid_until) and the renewal call; 0 or a little more when renewals follow refreshAt
         */
        readonly renewalLagMs: readonly number[];
      }
    >;
    /** per issuer: lanyard_tls_connections_total by outcome at the end (no_alpn: a proxy's connection) */
    readonly tlsConnections: Record<string, Record<string, number>>;
    /** a proxy started with the old anchor only, once the serving certificates are under the new one */
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
  /** workload certificate lifetime; short, so that phase 3 of the rotation comes within the run */
  readonly leafLifetime?: string;
  /** handshakes per second per direction during the rotation */
  readonly rate?: number;
  readonly say?: (title: string, detail?: string) => void;
  /** called once the topology exists, with a function that tears everything down (for signal handlers) */
  readonly onTopology?: (teardown: () => void, t: Topology, workDir: string) => void;
  /** stop after building the topology and starting the issuers and pods (hygiene tests) */
  readonly holdAfterSetup?: () => Promise<void>;
}
