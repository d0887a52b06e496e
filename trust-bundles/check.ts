import { createChainVerifier, formatDuration, isLanyardError, type CertificateInfo } from '../ca/index.js';
import { unionBundle, type BundleAnchor, type TrustBundle } from './bundle.js';

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
  for (const c of clusters) {
    for (const a of c.bundle.anchors) findings.push(anchorValidity(c.name, a, now, anchorWarnMs));
    const issuer = c.issuerChain[0];
    if (issuer === undefined) {
      findings.push(finding('error', c.name, 'issuer-missing', 'no issuer certificate found'));
      continue;
    }
    findings.push(issuerValidity(c.name, issuer, now, issuerWarnMs));
  }
  for (const c of clusters) {
    if (c.issuerChain[0] === undefined) continue;
    for (const peer of clusters) findings.push(issuerTrust(c, peer, now));
  }
  findings.push(...missingAnchors(clusters));

  const exitCode = findings.some((f) => f.severity === 'error')
    ? 1
    : findings.some((f) => f.severity === 'warning')
      ? 3
      : 0;
  return { now: now.toISOString(), findings, exitCode };
}

function finding(severity: Severity, cluster: string | null, check: string, message: string): Finding {
  return { severity, cluster, check, message };
}

/** anchor-expired, anchor-not-yet-valid, anchor-expiring or anchor-valid. */
function anchorValidity(cluster: string, a: BundleAnchor, now: Date, anchorWarnMs: number): Finding {
  const left = a.notAfter.getTime() - now.getTime();
  const anchor = `anchor ${a.subject} (${short(a.fingerprint)})`;
  if (left <= 0)
    return finding('error', cluster, 'anchor-expired', `${anchor} expired ${formatDuration(-left)} ago`);
  if (now.getTime() < a.notBefore.getTime())
    return finding('error', cluster, 'anchor-not-yet-valid', `${anchor} is not valid yet`);
  if (left < anchorWarnMs)
    return finding('warning', cluster, 'anchor-expiring', `${anchor} expires in ${formatDuration(left)}`);
  return finding('ok', cluster, 'anchor-valid', `${anchor} valid for ${formatDuration(left)}`);
}

/** issuer-expired, issuer-expiring or issuer-valid. */
function issuerValidity(cluster: string, issuer: CertificateInfo, now: Date, issuerWarnMs: number): Finding {
  const left = issuer.notAfter.getTime() - now.getTime();
  const what = `issuer (serial ${issuer.serialHex})`;
  if (left <= 0)
    return finding('error', cluster, 'issuer-expired', `${what} expired ${formatDuration(-left)} ago`);
  if (left < issuerWarnMs)
    return finding('warning', cluster, 'issuer-expiring', `${what} expires in ${formatDuration(left)}`);
  return finding('ok', cluster, 'issuer-valid', `${what} valid for ${formatDuration(left)}`);
}

/** Whether `c`'s issuer chains to `peer`'s bundle: issuer-trusted(-by-peer) or issuer-untrusted(-by-peer). */
function issuerTrust(c: ClusterTrust, peer: ClusterTrust, now: Date): Finding {
  const path = trustPath(c.issuerChain, peer.bundle, now);
  const problem = 'problem' in path ? path.problem : undefined;
  const own = peer === c;
  if (problem === undefined) {
    return finding(
      'ok',
      c.name,
      own ? 'issuer-trusted' : 'issuer-trusted-by-peer',
      own ? 'issuer chains to its own bundle' : `issuer is trusted by ${peer.name}'s bundle`,
    );
  }
  return finding(
    'error',
    c.name,
    own ? 'issuer-untrusted' : 'issuer-untrusted-by-peer',
    own
      ? `issuer does not chain to its own bundle: ${problem}`
      : `issuer is not trusted by ${peer.name}'s bundle: pods in ${peer.name} will refuse ${c.name}'s workloads (${problem})`,
  );
}

/** anchor-missing for every anchor of some bundle that another bundle lacks. */
function missingAnchors(clusters: readonly ClusterTrust[]): Finding[] {
  const findings: Finding[] = [];
  const all = unionBundle(clusters);
  for (const a of all.anchors) {
    const missing = clusters.filter((c) => !c.bundle.has(a.fingerprint)).map((c) => c.name);
    if (missing.length > 0) {
      findings.push(
        finding(
          'error',
          null,
          'anchor-missing',
          `anchor ${a.subject} (${short(a.fingerprint)}) is missing from the bundle of ${missing.join(', ')}`,
        ),
      );
    }
  }
  return findings;
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
