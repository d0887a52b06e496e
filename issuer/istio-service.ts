// The Istio CA API's part of a serving process (--istio-listen): its certifier and authenticator,
// the service on its own gRPC server (bound by grpc-bind.ts). main.ts wires these; nothing here runs
// without config.istio.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { systemClock, type Clock, type LeafPolicy } from '../ca/index.js';
import type { Authenticator, RateBudget } from './authn/index.js';
import { createAuthenticator } from './authn-factory.js';
import type { IssuerConfig } from './config.js';
import type { CredentialSource } from './credentials.js';
import { createIstioCaHandlers, loadIstioCaService, type RejectionLog } from './grpc/index.js';
import { createNodeImpersonationCheck, type NodeImpersonationCheck } from './impersonation.js';
import { createIstioCertifier, type IstioCertify, type IstioCertifyResult } from './istio-certify.js';
import type { IssuerMetrics } from './metrics.js';
import { resolveKubeConnection, type KubeConnection } from '../trust-bundles/index.js';

export interface IstioParts {
  readonly certify: IstioCertify;
  /** its own: tokens for the Istio audience, with its own token cache (never the Linkerd one's) */
  readonly authenticator: Authenticator;
  /** the impersonation node check, with --istio-trusted-node-accounts */
  readonly impersonation: NodeImpersonationCheck | undefined;
  /** closes the authenticator and the impersonation check's connections */
  close(): Promise<void>;
}

/**
 * The certifier of config.istio, or undefined when the API is off. The authenticator is a second one
 * of the same kind with the Istio audience; it must not share the process's token cache, whose
 * entries were accepted for the other audience. It returns the caller's pod (callerPod) when trusted
 * node accounts are configured: the impersonation node check, on the Kubernetes API of --kubeconfig
 * (default: in-cluster credentials), resolved here so that a configuration error fails the start.
 * The check runs only for a caller whose token verified and who is a trusted node account.
 */
export async function openIstio(
  config: IssuerConfig,
  o: {
    readonly clock: Clock;
    readonly logger: Logger;
    readonly metrics: IssuerMetrics;
    readonly credentials: CredentialSource;
    readonly policy: LeafPolicy;
    readonly onIssued: (result: IstioCertifyResult) => void;
    /** injected (tests); default: a new one for config.auth with the Istio audience */
    readonly authenticator?: Authenticator;
    /** injected (tests); default: resolved from --kubeconfig, else in-cluster credentials */
    readonly kubeConnection?: KubeConnection;
    /**
     * with --auth token-review: the process's total TokenReview budget, the one the Linkerd API's
     * authenticator spends too (createTokenReviewBudget); default: one of the Istio API's own
     */
    readonly tokenReviewBudget?: RateBudget;
  },
): Promise<IstioParts | undefined> {
  const istio = config.istio;
  if (istio === undefined) return undefined;
  const impersonating = istio.trustedNodeAccounts.length > 0;
  const impersonation = impersonating
    ? createNodeImpersonationCheck({
        connection:
          o.kubeConnection ??
          (await resolveKubeConnection(
            istio.kubeconfig !== undefined ? { kubeconfig: istio.kubeconfig } : {},
          )),
        clock: o.clock,
      })
    : undefined;
  let authenticator: Authenticator;
  try {
    authenticator =
      o.authenticator ??
      (await createAuthenticator(
        { ...config.auth, audience: istio.tokenAudience },
        {
          clock: o.clock,
          clockSkewMs: config.clockSkewMs,
          logger: o.logger.child({ component: 'authn', api: 'istio' }),
          metrics: o.metrics,
          workers: config.workers,
          ...(o.tokenReviewBudget !== undefined ? { tokenReviewBudget: o.tokenReviewBudget } : {}),
          callerPod: impersonating,
        },
      ));
  } catch (err) {
    impersonation?.close();
    throw err;
  }
  if (impersonation !== undefined) o.metrics.watchImpersonation(() => impersonation.stats());
  const certify = createIstioCertifier({
    clock: o.clock,
    credentials: o.credentials,
    authenticator,
    policy: o.policy,
    domain: config.domain,
    maxTtlMs: istio.maxTtlMs,
    trustedNodeAccounts: istio.trustedNodeAccounts,
    ...(impersonation !== undefined ? { impersonation: impersonation.check } : {}),
    onIssued: o.onIssued,
  });
  return {
    certify,
    authenticator,
    impersonation,
    async close() {
      impersonation?.close();
      await authenticator.close?.();
    },
  };
}

/** Adds IstioCertificateService to `server` (the --istio-listen port's own gRPC server). */
export function addIstioService(
  server: grpc.Server,
  parts: IstioParts,
  o: {
    readonly config: IssuerConfig;
    readonly logger: Logger;
    readonly metrics: IssuerMetrics;
    readonly rejectionLog: RejectionLog;
    readonly maxCallMs?: number;
  },
): void {
  server.addService(
    loadIstioCaService(),
    createIstioCaHandlers({
      certify: parts.certify,
      logger: o.logger,
      metrics: o.metrics,
      wallClock: systemClock,
      cluster: o.config.cluster,
      rejectionLog: o.rejectionLog,
      ...(o.maxCallMs !== undefined ? { maxCallMs: o.maxCallMs } : {}),
    }),
  );
}
