import { certificateReport } from '../ca/inspect/index.js';
import {
  encodePem,
  fingerprint,
  type CertificateInfo,
  type Clock,
  type IdentityDomain,
} from '../ca/index.js';
import { formatHostPort, type HostPort, type IssuerConfig } from './config.js';
import type { CredentialSource } from './credentials.js';
import type { IssuerStatus, ServedApisStatus, ServingTlsStatus } from '../trust-bundles/index.js';
import type { IssuanceLedger } from './ledger.js';
import { credentialReady } from './readiness.js';
import type { RenewalHint } from './renewal-hint.js';

export type { AnchorStatus, IssuerStatus, ServedApisStatus } from '../trust-bundles/index.js';

export interface StatusReporter {
  ready(): boolean;
  status(): IssuerStatus;
}

export function createStatusReporter(o: {
  readonly cluster: string;
  readonly domain: IdentityDomain;
  readonly clock: Clock;
  readonly credentials: CredentialSource;
  readonly ledger: IssuanceLedger;
  readonly leafLifetimeMs: number;
  readonly clockSkewMs: number;
  /** the serving certificate in use (absent: plaintext) */
  readonly servingTls?: () => ServingTlsStatus;
  readonly renewalHint?: RenewalHint;
  /** which APIs are served, and how (read on each status()) */
  readonly apis: () => ServedApisStatus;
}): StatusReporter {
  const { renewalHint } = o;
  const hint =
    renewalHint === undefined
      ? null
      : { after: renewalHint.after.toISOString(), spreadMs: renewalHint.spreadMs };
  // the full subject DN ("CN=identity.linkerd.cluster.local, OU=east"), parsed once per certificate:
  // credentials are swapped whole on reload, so their certificate objects serve as keys
  const subjects = new WeakMap<CertificateInfo, string>();
  const subjectText = (c: CertificateInfo): string => {
    let s = subjects.get(c);
    if (s === undefined) {
      s = certificateReport(c, o.clock.now()).subject;
      subjects.set(c, s);
    }
    return s;
  };
  const ready = (): boolean => credentialReady(o.credentials, o.clock);
  return {
    ready,
    status() {
      const cred = o.credentials.current();
      return {
        cluster: o.cluster,
        trustDomain: o.domain.trustDomain,
        controlNamespace: o.domain.controlNamespace,
        ready: ready(),
        now: o.clock.now().toISOString(),
        issuer:
          cred === undefined
            ? null
            : {
                subject: subjectText(cred.certificate),
                serial: cred.certificate.serialHex,
                notBefore: cred.certificate.notBefore.toISOString(),
                notAfter: cred.certificate.notAfter.toISOString(),
                subjectKeyId: cred.certificate.subjectKeyId?.toString('hex') ?? null,
                anchorFingerprint: fingerprint(cred.anchor.der),
                anchorsReached: cred.anchorsReached.map((a) => fingerprint(a.der)),
                chainPem: cred.chain.map((c) => encodePem('CERTIFICATE', c.der)).join(''),
              },
        anchors: (cred?.anchors ?? []).map((a) => ({
          fingerprint: fingerprint(a.der),
          subject: subjectText(a),
          notBefore: a.notBefore.toISOString(),
          notAfter: a.notAfter.toISOString(),
        })),
        credentialLoadedAt: o.credentials.loadedAt()?.toISOString() ?? null,
        leafLifetimeMs: o.leafLifetimeMs,
        clockSkewMs: o.clockSkewMs,
        certificatesIssued: o.ledger.total,
        issuedByAnchor: o.ledger.snapshot(),
        issuedByApi: o.ledger.byApi(),
        apis: o.apis(),
        servingTls: o.servingTls?.() ?? null,
        renewalHint: hint,
      };
    },
  };
}

/** The ports a serving process bound (port 0 in the config picks one); absent: not bound yet. */
export interface BoundPorts {
  readonly grpc?: number | undefined;
  readonly istio?: number | undefined;
}

type ApisConfig = Pick<IssuerConfig, 'listen' | 'auth' | 'istio'>;

/** The `apis` of /v1/status: the configured addresses, with the ports actually bound once known. */
export function servedApis(config: ApisConfig, bound: BoundPorts = {}): ServedApisStatus {
  const { istio } = config;
  return {
    Certify: {
      listen: hostPort(config.listen, bound.grpc),
      tokenAudience: config.auth.audience,
    },
    CreateCertificate:
      istio === undefined
        ? null
        : {
            listen: hostPort(istio.listen, bound.istio),
            tokenAudience: istio.tokenAudience,
            trustedNodeAccounts: istio.trustedNodeAccounts.map((a) => `${a.namespace}/${a.name}`),
            maxTtlMs: istio.maxTtlMs,
          },
  };
}

function hostPort(at: HostPort, boundPort: number | undefined): string {
  return formatHostPort(at.host, boundPort ?? at.port);
}

/** The status reporter of `lanyard serve` (one process, or a cluster primary) as its config sets it up. */
export function createIssuerStatusReporter(
  config: Pick<IssuerConfig, 'cluster' | 'domain' | 'leafLifetimeMs' | 'clockSkewMs' | 'renewalHint'> &
    ApisConfig,
  o: {
    readonly clock: Clock;
    readonly credentials: CredentialSource;
    readonly ledger: IssuanceLedger;
    /** the serving TLS in use (absent: plaintext) */
    readonly servingTls: { status(): ServingTlsStatus } | undefined;
    /** the ports bound so far (default: none known; the configured ones are shown) */
    readonly bound?: () => BoundPorts;
  },
): StatusReporter {
  const { servingTls, bound } = o;
  return createStatusReporter({
    cluster: config.cluster,
    domain: config.domain,
    clock: o.clock,
    credentials: o.credentials,
    ledger: o.ledger,
    leafLifetimeMs: config.leafLifetimeMs,
    clockSkewMs: config.clockSkewMs,
    ...(servingTls !== undefined ? { servingTls: () => servingTls.status() } : {}),
    ...(config.renewalHint !== undefined ? { renewalHint: config.renewalHint } : {}),
    apis: () => servedApis(config, bound?.()),
  });
}
