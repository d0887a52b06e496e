import { createChainVerifier, formatDuration, isLanyardError, type CertificateInfo } from '../ca/index.js';
import { createTrustBundle, type BundleAnchor, type TrustBundle } from './bundle.js';

/** What is known about one cluster: its bundle and its issuer chain (issuer first). */
export interface ClusterTrust {
  readonly name: string;
  readonly bundle: TrustBundle;
  readonly issuerChain: readonly CertificateInfo[];
}

export type Severity = 'ok' | 'warning' | 'error';

export interface Finding {
  readonly severity: Severity;
  readonly cluster: string | null;
  /** stable identifier of the check, e.g. "issuer-expired", "issuer-untrusted-by-peer" */
  readonly check: string;
  readonly message: string;
}

export interface CheckReport {
  readonly now: string;
  readonly findings: readonly Finding[];
  /** 0 all well, 1 something expired/invalid/untrusted, 3 something expires within the window */
  readonly exitCode: 0 | 1 | 3;
}

export const CHECK_DEFAULTS = Object.freeze({ anchorWarnMs: 60 * 86_400_000, issuerWarnMs: 7 * 86_400_000 });

/**
 * The mesh-wide trust check. Per cluster: anchors and issuer within validity, the issuer chaining to
 * its own bundle. Across clusters (the flat-network invariant): every issuer chains to an anchor present
 * in every cluster's bundle, and all bundles hold the same anchors.
 */
export function checkMesh(
  clusters: readonly ClusterTrust[],
  now: Date,
  options: { anchorWarnMs?: number; issuerWarnMs?: number } = {},
): CheckReport {
  const anchorWarnMs = options.anchorWarnMs ?? CHECK_DEFAULTS.anchorWarnMs;
  const issuerWarnMs = options.issuerWarnMs ?? CHECK_DEFAULTS.issuerWarnMs;
  const findings: Finding[] = [];
  const add = (severity: Severity, cluster: string | null, check: string, message: string): void => {
    findings.push({ severity, cluster, check, message });
  };

  for (const c of clusters) {
    for (const a of c.bundle.anchors) {
      const left = a.notAfter.getTime() - now.getTime();
      if (left <= 0)
        add(
          'error',
          c.name,
          'anchor-expired',
          `anchor ${a.subject} (${short(a.fingerprint)}) expired ${formatDuration(-left)} ago`,
        );
      else if (now.getTime() < a.notBefore.getTime())
        add(
          'error',
          c.name,
          'anchor-not-yet-valid',
          `anchor ${a.subject} (${short(a.fingerprint)}) is not valid yet`,
        );
      else if (left < anchorWarnMs)
        add(
          'warning',
          c.name,
          'anchor-expiring',
          `anchor ${a.subject} (${short(a.fingerprint)}) expires in ${formatDuration(left)}`,
        );
      else
        add(
          'ok',
          c.name,
          'anchor-valid',
          `anchor ${a.subject} (${short(a.fingerprint)}) valid for ${formatDuration(left)}`,
        );
    }
    const issuer = c.issuerChain[0];
    if (issuer === undefined) {
      add('error', c.name, 'issuer-missing', 'no issuer certificate found');
      continue;
    }
    const left = issuer.notAfter.getTime() - now.getTime();
    if (left <= 0)
      add(
        'error',
        c.name,
        'issuer-expired',
        `issuer (serial ${issuer.serialHex}) expired ${formatDuration(-left)} ago`,
      );
    else if (left < issuerWarnMs)
      add(
        'warning',
        c.name,
        'issuer-expiring',
        `issuer (serial ${issuer.serialHex}) expires in ${formatDuration(left)}`,
      );
    else
      add(
        'ok',
        c.name,
        'issuer-valid',
        `issuer (serial ${issuer.serialHex}) valid for ${formatDuration(left)}`,
      );
  }

  for (const c of clusters) {
    if (c.issuerChain[0] === undefined) continue;
    for (const peer of clusters) {
      const path = trustPath(c.issuerChain, peer.bundle, now);
      const problem = 'problem' in path ? path.problem : undefined;
      const own = peer === c;
      if (problem === undefined) {
        add(
          'ok',
          c.name,
          own ? 'issuer-trusted' : 'issuer-trusted-by-peer',
          own ? 'issuer chains to its own bundle' : `issuer is trusted by ${peer.name}'s bundle`,
        );
      } else {
        add(
          'error',
          c.name,
          own ? 'issuer-untrusted' : 'issuer-untrusted-by-peer',
          own
            ? `issuer does not chain to its own bundle: ${problem}`
            : `issuer is not trusted by ${peer.name}'s bundle: pods in ${peer.name} will refuse ${c.name}'s workloads (${problem})`,
        );
      }
    }
  }

  const all = createTrustBundle(clusters.flatMap((c) => c.bundle.anchors.map((a) => a.certificate)));
  for (const a of all.anchors) {
    const missing = clusters.filter((c) => !c.bundle.has(a.fingerprint)).map((c) => c.name);
    if (missing.length > 0) {
      add(
        'error',
        null,
        'anchor-missing',
        `anchor ${a.subject} (${short(a.fingerprint)}) is missing from the bundle of ${missing.join(', ')}`,
      );
    }
  }

  const exitCode = findings.some((f) => f.severity === 'error')
    ? 1
    : findings.some((f) => f.severity === 'warning')
      ? 3
      : 0;
  return { now: now.toISOString(), findings, exitCode };
}

/**
 * Where an issuer chain leads in `bundle`: the anchor it ends at, or why it does not. Checked at `now`
 * moved into the issuer's validity window, so that trust is judged apart from expiry (reported on its own:
 * an expired issuer is not also "untrusted").
 */
export function trustPath(
  chain: readonly CertificateInfo[],
  bundle: TrustBundle,
  now: Date,
): { readonly anchor: BundleAnchor } | { readonly problem: string } {
  const issuer = chain[0];
  if (issuer === undefined) return { problem: 'no issuer certificate' };
  if (bundle.anchors.length === 0) return { problem: 'the bundle is empty' };
  const at = new Date(
    Math.min(Math.max(now.getTime(), issuer.notBefore.getTime()), issuer.notAfter.getTime()),
  );
  try {
    const path = createChainVerifier({
      anchors: bundle.anchors.map((a) => a.certificate),
      intermediates: chain.slice(1),
    }).verify(issuer, at);
    const end = path[path.length - 1];
    const anchor = bundle.anchors.find((a) => a.certificate === end);
    return anchor !== undefined ? { anchor } : { problem: 'the chain ends outside the bundle' };
  } catch (err) {
    return { problem: isLanyardError(err) ? `${err.code}: ${err.message}` : String(err) };
  }
}

export function short(fp: string): string {
  return fp.slice(0, 23);
}
