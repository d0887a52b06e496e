import { certificateReport } from '../ca/inspect/index.js';
import {
  encodePem,
  fingerprint,
  type CertificateInfo,
  type Clock,
  type IdentityDomain,
} from '../ca/index.js';
import type { IssuerConfig } from './config.js';
import type { CredentialSource } from './credentials.js';
import type { IssuerStatus, ServingTlsStatus } from '../trust-bundles/index.js';
import type { IssuanceLedger } from './ledger.js';
import { credentialReady } from './readiness.js';
import type { RenewalHint } from './renewal-hint.js';

export type { AnchorStatus, IssuerStatus } from '../trust-bundles/index.js';

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
        servingTls: o.servingTls?.() ?? null,
        renewalHint: hint,
      };
    },
  };
}

/** The status reporter of `lanyard serve` (one process, or a cluster primary) as its config sets it up. */
export function createIssuerStatusReporter(
  config: Pick<IssuerConfig, 'cluster' | 'domain' | 'leafLifetimeMs' | 'clockSkewMs' | 'renewalHint'>,
  o: {
    readonly clock: Clock;
    readonly credentials: CredentialSource;
    readonly ledger: IssuanceLedger;
    /** the serving TLS in use (absent: plaintext) */
    readonly servingTls: { status(): ServingTlsStatus } | undefined;
  },
): StatusReporter {
  const { servingTls } = o;
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
  });
}
