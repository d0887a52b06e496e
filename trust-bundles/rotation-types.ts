// The rotation as data: what each cluster's issuer, bundle and proxies are, which phase each cluster is
// in, and the next step with the preconditions it was judged by. Built by rotationStatus (rotation.ts).
import type { RotationInput } from './errors.js';
import type { PodRef } from './pods.js';
import type { OldLeafBasis } from './rotation-bounds.js';

/**
 * The six phases of a rotation from anchor A to B by cross-signing:
 * 1 prepare B, the cross certificate (B by A) and one B-issuer per cluster (optionally renewal hints);
 * 2 switch each cluster's issuer to the B-issuer serving the cross certificate;
 * 3 add B to every bundle (A+B);
 * 4 wait until no leaf of an A-issuer can be alive anywhere;
 * 5 drop A from the bundles;
 * 6 (optional) stop serving the cross certificate once no running proxy trusts only A.
 */
export type RotationPhaseNumber = 1 | 2 | 3 | 4 | 5 | 6;

/** What a cluster's issuer chain reaches. */
export type IssuerStanding =
  /** an A-issuer: its chain reaches old anchors only */
  | { readonly kind: 'old'; readonly oldAnchorsReached: readonly string[] }
  /** a B-issuer that serves the cross certificate: reaches B, and A through the cross certificate */
  | { readonly kind: 'new-with-cross'; readonly oldAnchorsReached: readonly string[] }
  /** a B-issuer without a cross certificate: reaches B only */
  | { readonly kind: 'new'; readonly oldAnchorsReached: readonly [] }
  /** reaches no anchor known (a problem) */
  | { readonly kind: 'none'; readonly oldAnchorsReached: readonly [] };

/** What is known of a cluster's running proxies (LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS of each pod). */
export type ProxyStanding =
  /** no --kubeconfig for this cluster: whether a proxy trusts only A cannot be known */
  | { readonly kind: 'not-given' }
  /** the pods could not be listed (the code says why) */
  | { readonly kind: 'unavailable'; readonly code: string }
  | {
      readonly kind: 'listed';
      /** pods with a linkerd-proxy container */
      readonly proxies: number;
      /** proxies whose anchors are all old (they verify B's leaves only through the cross certificate) */
      readonly onlyOld: readonly PodRef[];
      /** proxies whose anchors come from elsewhere (valueFrom) or do not parse */
      readonly unknown: readonly PodRef[];
    };

/** What the identity service's own serving chain (`serve --tls-cert`) reaches. */
export type ServingStanding =
  /** plaintext gRPC listener: nothing to reach */
  | { readonly kind: 'plaintext' }
  /** not known: a directory source, or a /v1/status without servingTls.chainPem */
  | { readonly kind: 'unknown' }
  | {
      readonly kind: 'tls';
      /** fingerprints of the old anchors the served chain reaches */
      readonly oldAnchorsReached: readonly string[];
      /** reaches B (its certificate, or a cross certificate for B taken as B by subject and key) */
      readonly reachesNew: boolean;
    };

/** Where one cluster stands (phase 4 is the mesh waiting on clusters in phase 3). */
export type ClusterPhase =
  /** issuer still an A-issuer (or none): prepare, then switch */
  | { readonly phase: 1; readonly name: 'prepare' }
  /** issuer switched to B with the cross certificate; bundle lacks B */
  | { readonly phase: 2; readonly name: 'switched' }
  /** issuer under B; bundle holds B and old anchors */
  | { readonly phase: 3; readonly name: 'trusts-both' }
  /** bundle holds B only; issuer still serves the cross certificate */
  | { readonly phase: 5; readonly name: 'old-dropped' }
  /** bundle holds B only; issuer serves no cross certificate */
  | { readonly phase: 6; readonly name: 'done' };

export interface ClusterRotationState {
  readonly name: string;
  readonly kind: 'admin' | 'dir';
  readonly phase: ClusterPhase;
  readonly bundleHasNew: boolean;
  /** fingerprints of old anchors still in this cluster's bundle */
  readonly oldAnchorsInBundle: readonly string[];
  readonly issuer: IssuerStanding;
  /**
   * the latest time a leaf an earlier issuer of this cluster signed (an A-issuer's, once it switched)
   * can be valid, skew included; null = unknown, or nothing to bound
   */
  readonly oldLeavesValidUntil: string | null;
  readonly oldLeavesBasis: OldLeafBasis | null;
  /** ms added to an admin source's bound for replicas that switched later (--propagation-margin); 0 for directories */
  readonly oldLeavesPropagationMarginMs: number;
  readonly proxies: ProxyStanding;
  /** notAfter of the cross certificate this cluster's issuer serves (null: it serves none) */
  readonly crossNotAfter: string | null;
  /** the identity service's serving chain: pods of this cluster must verify it to get a certificate */
  readonly serving: ServingStanding;
}

/** A precondition of a step, as measured now: holds, does not hold, or cannot be established. */
export type Precondition =
  /** switch: the served chain [B-issuer, cross] verifies now against an anchor of every bundle (pathLen counted) */
  | {
      readonly kind: 'cross-reaches-every-bundle';
      readonly holds: boolean | 'unknown';
      readonly lacking: readonly string[];
    }
  /** switch: the cross certificate, and the old anchor that signed it, are valid now (not expired) */
  | {
      readonly kind: 'cross-not-expired';
      readonly holds: boolean | 'unknown';
      /** the cross certificate's notAfter (null: unknown) */
      readonly notAfter: string | null;
    }
  /** drop A: every issuer is a B-issuer */
  | { readonly kind: 'every-issuer-switched'; readonly holds: boolean; readonly pending: readonly string[] }
  /** drop A: every bundle holds B */
  | {
      readonly kind: 'new-anchor-in-every-bundle';
      readonly holds: boolean;
      readonly lacking: readonly string[];
    }
  /**
   * drop A: every cluster's serving chain (when TLS is served) reaches B, or pods started after A left
   * the bundle cannot get a certificate. `unknown`: admin sources whose /v1/status does not show the
   * chain; `unchecked`: directory sources (no serving information: not applicable, check it yourself)
   */
  | {
      readonly kind: 'serving-chain-reaches-new';
      readonly holds: boolean | 'unknown';
      readonly lacking: readonly string[];
      readonly unknown: readonly string[];
      readonly unchecked: readonly string[];
    }
  /** drop A: no leaf of an A-issuer can be valid any more (bounded from each switch) */
  | {
      readonly kind: 'old-leaves-expired';
      readonly holds: boolean | 'unknown';
      readonly until: string | null;
    }
  /** stop the cross: no running proxy trusts only old anchors (needs --kubeconfig per cluster) */
  | {
      readonly kind: 'no-proxy-trusts-only-old';
      readonly holds: boolean | 'unknown';
      readonly unknownClusters: readonly string[];
      readonly pods: readonly PodRef[];
    };

/** The commands of one step for one cluster. */
export interface StepCommands {
  readonly cluster: string;
  readonly commands: readonly string[];
}

export type NextAction =
  | 'none'
  | 'repair'
  | 'switch-issuers'
  | 'add-new-anchor'
  | 'wait-old-leaves'
  | 'drop-old-anchors'
  | 'wait-old-proxies'
  | 'stop-serving-cross';

export interface NextStep {
  readonly action: NextAction;
  /** the phase this step belongs to (null: none, repair) */
  readonly phase: RotationPhaseNumber | null;
  readonly clusters: readonly string[];
  /** false: taking it now would break a handshake somewhere, or its precondition cannot be established */
  readonly safe: boolean;
  readonly preconditions: readonly Precondition[];
  /** inputs without which the step's precondition or commands cannot be established */
  readonly missing: readonly RotationInput[];
  /** the step's commands (empty when an input is missing, or when there is nothing to run) */
  readonly commands: readonly StepCommands[];
  readonly reason: string;
  readonly waitUntil?: string;
}

export interface AnchorSummary {
  /** null when only a cross certificate names it (its own certificate in no bundle) */
  readonly fingerprint: string | null;
  readonly subject: string;
  readonly keyId?: string;
}

/** An anchor that left some bundle while leaves of an A-issuer may still be valid. */
export interface EarlyRemoval {
  /** null: an anchor no bundle holds any more, known only as the issuer of the cross certificates served */
  readonly anchorFingerprint: string | null;
  readonly clusters: readonly string[];
  /** when removing it would have been safe; null = unknown */
  readonly safeAfter: string | null;
}

/**
 * A cross certificate that ends too soon: within CROSS_WARN_MS of now, or before the issuer a renewal
 * would bring (a renewal at notAfter − lifetime/3, cert-manager's default, is valid until notAfter +
 * 2 × lifetime/3; one past the cross certificate is rejected at reload: ERR_CROSS_CERT_EXPIRES_FIRST).
 */
export interface CrossExpiryWarning {
  readonly kind: 'cross-expires-soon';
  readonly cluster: string;
  readonly crossNotAfter: string;
  /** when the issuer renewed at 2/3 of its lifetime would expire */
  readonly renewedIssuerNotAfter: string;
}

export interface RotationStatus {
  readonly now: string;
  /** 'steady': one anchor, no cross certificate (no rotation in progress, or rotation complete) */
  readonly phase: RotationPhaseNumber | 'steady';
  readonly newAnchor: AnchorSummary | null;
  readonly oldAnchors: readonly AnchorSummary[];
  readonly clusters: readonly ClusterRotationState[];
  /** mesh-wide: when the last leaf of an A-issuer expires; null = unknown, or not every issuer switched */
  readonly oldLeavesValidUntil: string | null;
  readonly next: NextStep;
  /** what breaks trust somewhere now: rotate status exits 1 when there is any */
  readonly problems: readonly string[];
  readonly earlyRemovals: readonly EarlyRemoval[];
  /** what does not break trust now but will: a cross certificate ending soon (rotate status still exits 0) */
  readonly warnings: readonly CrossExpiryWarning[];
  /** clusters whose record does not reach back a leaf lifetime (see rotation-bounds recordBound) */
  readonly recordGaps: readonly {
    readonly cluster: string;
    readonly since: string;
    readonly until: string;
  }[];
}
