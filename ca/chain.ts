import { verify } from 'node:crypto';
import {
  describeCertificate,
  parseCertificate,
  KEY_USAGE,
  type CertificateInfo,
  type GeneralNameForm,
} from './certificate.js';
import { SIGNATURE_HASH } from './der/index.js';
import { CredentialError, PolicyError } from './errors.js';

const MAX_DEPTH = 8;

export interface ChainVerifier {
  readonly anchors: readonly CertificateInfo[];
  readonly intermediates: readonly CertificateInfo[];
  /**
   * Verifies `cert` → intermediates → one of the anchors at time `at`: signatures, validity windows,
   * CA flags and keyCertSign, pathLen, critical extensions and name constraints. Returns the path,
   * `cert` first and the anchor last. When `cert` is a CA it counts toward its parents' pathLen (it is
   * checked because it is about to issue). Throws ERR_CERT_EXPIRED, ERR_CERT_NOT_YET_VALID, ERR_NOT_CA,
   * ERR_CERT_UNSUPPORTED_CRITICAL_EXTENSION, ERR_NAME_CONSTRAINTS, ERR_NAME_CONSTRAINTS_UNSUPPORTED or
   * ERR_CHAIN_UNTRUSTED.
   */
  verify(cert: CertificateInfo | Uint8Array, at: Date): CertificateInfo[];
  /**
   * The post-sign check of a leaf this process just built from `issuer`'s template: the signature over
   * `tbs` verifies with the issuer's key, the leaf's window lies within `at`, and the issuer's path to an
   * anchor (verified once, memoized) is valid at `at`. About half the cost of verify(), which re-parses.
   * `paths`, when given, replace that path: the paths (issuer first) to every root, verified before.
   */
  verifyIssued(
    leaf: { tbs: Buffer; signature: Buffer; notBefore: Date; notAfter: Date },
    issuer: CertificateInfo,
    hash: 'sha256' | 'sha384',
    at: Date,
    paths?: readonly (readonly CertificateInfo[])[],
  ): void;
}

type CertInput = CertificateInfo | Uint8Array;

const toInfo = (c: CertInput): CertificateInfo => (c instanceof Uint8Array ? parseCertificate(c) : c);

/** A verifier over fixed intermediates and anchors, parsed once; links between CA certificates are memoized. */
export function createChainVerifier(options: {
  anchors: readonly CertInput[];
  intermediates?: readonly CertInput[];
}): ChainVerifier {
  const anchors = options.anchors.map(toInfo);
  const intermediates = (options.intermediates ?? []).map(toInfo);
  if (anchors.length === 0) throw new CredentialError('ERR_CHAIN_UNTRUSTED', 'no trust anchors given');
  const bySubject = new Map<string, CertificateInfo[]>();
  for (const c of [...intermediates, ...anchors]) {
    const key = c.subjectDer.toString('latin1');
    bySubject.set(key, [...(bySubject.get(key) ?? []), c]);
  }
  const state: ChainState = {
    anchorSet: new Set(anchors),
    bySubject,
    linkMemo: new WeakMap(),
    issuerPaths: new WeakMap(),
  };
  return Object.freeze({
    anchors,
    intermediates,
    verify: (input: CertInput, at: Date) => verifyPath(state, input, at),
    verifyIssued: (leaf: IssuedLeaf, issuer: CertificateInfo, hash: Hash, at: Date, paths?: Paths) => {
      verifyIssuedLeaf(leaf, issuer, hash, paths ?? [issuerPath(state, issuer, at)], at);
    },
  });
}

/** What a verifier holds: its certificates indexed, and what it has verified so far. */
interface ChainState {
  readonly anchorSet: ReadonlySet<CertificateInfo>;
  /** intermediates and anchors by subject Name DER (latin1) */
  readonly bySubject: ReadonlyMap<string, readonly CertificateInfo[]>;
  /** child → parent → whether child's signature verifies with parent's key */
  readonly linkMemo: WeakMap<CertificateInfo, WeakMap<CertificateInfo, boolean>>;
  /** issuer → its verified path, for verifyIssued */
  readonly issuerPaths: WeakMap<CertificateInfo, CertificateInfo[]>;
}

type IssuedLeaf = Parameters<ChainVerifier['verifyIssued']>[0];
type Hash = 'sha256' | 'sha384';
type Paths = readonly (readonly CertificateInfo[])[];

function signedBy(
  state: ChainState,
  child: CertificateInfo,
  parent: CertificateInfo,
  memoize: boolean,
): boolean {
  if (memoize) {
    const known = state.linkMemo.get(child)?.get(parent);
    if (known !== undefined) return known;
  }
  const ok = signatureVerifies(child, parent);
  if (memoize) {
    let m = state.linkMemo.get(child);
    if (m === undefined) state.linkMemo.set(child, (m = new WeakMap()));
    m.set(parent, ok);
  }
  return ok;
}

/** Signature checks one path search may spend (rustls-webpki allows 100): a hostile pool cannot stall it. */
const SIGNATURE_BUDGET = 64;

/**
 * Builds a path from `input` to an anchor, depth first, backtracking across candidate issuers as
 * rustls-webpki does: a served chain [issuer, cross(B by A)] reaches A through the cross certificate
 * and B directly. Anchors are tried before intermediates with the same subject, so the shortest path
 * wins. The most specific problem met on a dead end is thrown when no path exists, unless the search
 * ran out of signature checks (then ERR_CHAIN_UNTRUSTED says so).
 */
function verifyPath(state: ChainState, input: CertInput, at: Date): CertificateInfo[] {
  const leaf = toInfo(input);
  checkValidity(leaf, at, 'certificate');
  checkCriticalExtensions(leaf);
  // pathLen counts the non-self-issued CA certificates below a CA, not the end-entity. A path that
  // starts at a CA (an issuer checked before it signs leaves) counts that CA: its leaves come below it.
  const search: PathSearch = { state, at, leaf, budget: SIGNATURE_BUDGET, lastProblem: undefined };
  const path = extendPath(search, [leaf], leaf.isCa && !isSelfIssued(leaf) ? 1 : 0);
  if (path !== undefined) return path;
  // an exhausted budget says more than a problem met on an earlier dead end: the search stopped
  if (search.budget <= 0)
    throw new CredentialError('ERR_CHAIN_UNTRUSTED', `no path within ${SIGNATURE_BUDGET} signature checks`);
  if (search.lastProblem) throw search.lastProblem;
  throw new CredentialError(
    'ERR_CHAIN_UNTRUSTED',
    `${describeCertificate(leaf)} does not chain to a trust anchor`,
  );
}

interface PathSearch {
  readonly state: ChainState;
  readonly at: Date;
  readonly leaf: CertificateInfo;
  budget: number;
  lastProblem: CredentialError | undefined;
}

function extendPath(
  search: PathSearch,
  path: CertificateInfo[],
  casBelow: number,
): CertificateInfo[] | undefined {
  const { state } = search;
  const current = path[path.length - 1] as CertificateInfo;
  if (path.length > MAX_DEPTH) {
    search.lastProblem = new CredentialError(
      'ERR_CHAIN_UNTRUSTED',
      `chain longer than ${MAX_DEPTH} certificates`,
    );
    return undefined;
  }
  const all = state.bySubject.get(current.issuerDer.toString('latin1')) ?? [];
  const candidates = [
    ...all.filter((c) => state.anchorSet.has(c)),
    ...all.filter((c) => !state.anchorSet.has(c)),
  ];
  for (const cand of candidates) {
    if (cand === current || path.includes(cand)) continue;
    if (current.authorityKeyId && cand.subjectKeyId && !current.authorityKeyId.equals(cand.subjectKeyId))
      continue;
    const memoize = current !== search.leaf;
    if (!memoize || state.linkMemo.get(current)?.get(cand) === undefined) {
      if (search.budget <= 0) return undefined;
      search.budget--;
    }
    if (!signedBy(state, current, cand, memoize)) continue;
    try {
      checkIssuerCert(cand, search.at, casBelow);
    } catch (err) {
      search.lastProblem = err as CredentialError;
      continue;
    }
    const next = [...path, cand];
    if (state.anchorSet.has(cand)) {
      try {
        checkNameConstraints(next);
        return next;
      } catch (err) {
        search.lastProblem = err as CredentialError;
        continue;
      }
    }
    const found = extendPath(search, next, isSelfIssued(cand) ? casBelow : casBelow + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The issuer's path to an anchor, verified once at `at` and then memoized. */
function issuerPath(state: ChainState, issuer: CertificateInfo, at: Date): CertificateInfo[] {
  const path = state.issuerPaths.get(issuer) ?? verifyPath(state, issuer, at);
  state.issuerPaths.set(issuer, path);
  return path;
}

/**
 * The post-sign check of a leaf this process just built from `issuer`'s template, on paths verified
 * before (issuer first, each ending at a root: an anchor, or a served cross certificate taken as one):
 * the signature over `tbs` verifies with the issuer's key (one check, whatever the number of paths),
 * the leaf's window holds `at`, and every certificate of every path is valid at `at`.
 */
function verifyIssuedLeaf(
  leaf: IssuedLeaf,
  issuer: CertificateInfo,
  hash: Hash,
  paths: Paths,
  at: Date,
): void {
  let ok = false;
  try {
    ok = verify(hash, leaf.tbs, issuer.publicKey, leaf.signature);
  } catch {
    // an unusable signature is a failed one
  }
  if (!ok)
    throw new CredentialError('ERR_CHAIN_UNTRUSTED', 'the new leaf does not verify with the issuer key');
  if (at.getTime() < leaf.notBefore.getTime() || at.getTime() > leaf.notAfter.getTime()) {
    throw new CredentialError('ERR_CERT_NOT_YET_VALID', 'the new leaf is not valid now');
  }
  for (const path of paths) for (const c of path) checkValidity(c, at, 'chain certificate');
}

/** `child`'s signature verifies with `parent`'s key (false for an unknown signature algorithm). */
export function signatureVerifies(child: CertificateInfo, parent: CertificateInfo): boolean {
  const hash = SIGNATURE_HASH[child.signatureAlgorithm];
  if (hash === undefined) return false;
  try {
    return verify(hash, child.tbs, parent.publicKey, child.signature);
  } catch {
    return false;
  }
}

/** One-shot form of createChainVerifier(...).verify(...). */
export function verifyChain(options: {
  cert: CertInput;
  intermediates?: readonly CertInput[];
  anchors: readonly CertInput[];
  at: Date;
}): CertificateInfo[] {
  const v = createChainVerifier({ anchors: options.anchors, intermediates: options.intermediates ?? [] });
  return v.verify(options.cert, options.at);
}

export function checkValidity(c: CertificateInfo, at: Date, what: string): void {
  if (at.getTime() < c.notBefore.getTime()) {
    throw new CredentialError(
      'ERR_CERT_NOT_YET_VALID',
      `${what} ${describeCertificate(c)} is not valid before ${c.notBefore.toISOString()}`,
    );
  }
  if (at.getTime() > c.notAfter.getTime()) {
    throw new CredentialError(
      'ERR_CERT_EXPIRED',
      `${what} ${describeCertificate(c)} expired at ${c.notAfter.toISOString()}`,
    );
  }
}

/** Subject and issuer are the same name (an anchor, or a CA re-keyed under its own name). */
export function isSelfIssued(c: CertificateInfo): boolean {
  return c.subjectDer.equals(c.issuerDer);
}

/** A critical extension Lanyard does not process makes the certificate unusable (RFC 5280 §4.2). */
export function checkCriticalExtensions(c: CertificateInfo): void {
  if (c.unsupportedCriticalExtensions.length > 0) {
    throw new CredentialError(
      'ERR_CERT_UNSUPPORTED_CRITICAL_EXTENSION',
      `${describeCertificate(c)} has critical extension(s) Lanyard does not process: ${c.unsupportedCriticalExtensions.join(', ')}`,
    );
  }
}

/** `below`: how many non-self-issued CA certificates sit under this one in the path (for pathLen). */
function checkIssuerCert(c: CertificateInfo, at: Date, below: number): void {
  if (!c.isCa)
    throw new CredentialError(
      'ERR_NOT_CA',
      `${describeCertificate(c)} is not a CA certificate (basicConstraints CA:FALSE)`,
    );
  if (c.keyUsage !== undefined && (c.keyUsage & KEY_USAGE.keyCertSign) === 0) {
    throw new CredentialError(
      'ERR_NOT_CA',
      `${describeCertificate(c)} may not sign certificates (no keyCertSign)`,
    );
  }
  checkCriticalExtensions(c);
  if (c.pathLen !== undefined && below > c.pathLen) {
    throw new CredentialError(
      'ERR_CHAIN_UNTRUSTED',
      `${describeCertificate(c)} has pathLen ${c.pathLen} but ${below} CA certificate(s) below it`,
    );
  }
  checkValidity(c, at, 'CA certificate');
}

/**
 * Every CA's name constraints apply to every certificate below it in the path (as OpenSSL does);
 * self-issued intermediates are skipped. `path[0]` is the certificate being verified.
 */
function checkNameConstraints(path: readonly CertificateInfo[]): void {
  for (let j = 1; j < path.length; j++) {
    const ca = path[j] as CertificateInfo;
    if (!ca.hasNameConstraints) continue;
    for (let i = 0; i < j; i++) {
      const c = path[i] as CertificateInfo;
      if (i > 0 && isSelfIssued(c)) continue;
      const what = describeCertificate(c);
      checkConstraintsEvaluable(ca, c.nameForms, what);
      const violation = nameConstraintViolation(ca, {
        dnsNames:
          i === 0 &&
          c.dnsNames.length === 0 &&
          c.subjectCommonName !== undefined &&
          looksLikeHostname(c.subjectCommonName)
            ? [c.subjectCommonName]
            : c.dnsNames,
        uris: c.uris,
      });
      if (violation !== undefined) throw new PolicyError('ERR_NAME_CONSTRAINTS', violation);
    }
  }
}

/**
 * Refuses (ERR_NAME_CONSTRAINTS_UNSUPPORTED) a CA with a name-constraint subtree Lanyard does not
 * evaluate that could apply to names of `forms`: one of such a form, or any with minimum/maximum
 * (OpenSSL refuses every path under those). A subtree of another form constrains nothing, as in OpenSSL.
 * `what` names the certificate(s) the names belong to.
 */
export function checkConstraintsEvaluable(
  ca: CertificateInfo,
  forms: readonly GeneralNameForm[],
  what: string,
): void {
  for (const u of ca.unevaluatedNameConstraints) {
    if (u.minMax || forms.includes(u.form)) {
      throw new CredentialError(
        'ERR_NAME_CONSTRAINTS_UNSUPPORTED',
        `${describeCertificate(ca)} has ${u.subtrees} name constraints Lanyard does not evaluate (${u.form}${u.minMax ? ' with minimum/maximum' : ''}) that apply to ${what}`,
      );
    }
  }
}

/**
 * Checks names against one CA's evaluated name constraints: DNS names and URI hosts must lie in a
 * permitted subtree of their form (when the CA has any) and in no excluded one. Returns what is wrong,
 * or undefined; the caller picks the error class. The subtrees Lanyard does not evaluate are
 * checkConstraintsEvaluable's.
 */
export function nameConstraintViolation(
  ca: CertificateInfo,
  names: { readonly dnsNames: readonly string[]; readonly uris: readonly string[] },
): string | undefined {
  for (const name of names.dnsNames) {
    if (ca.permittedDns.length > 0 && !ca.permittedDns.some((base) => dnsWithin(name, base)))
      return `DNS name ${name} is outside ${describeCertificate(ca)}'s permitted subtrees`;
    if (ca.excludedDns.some((base) => dnsWithin(name, base)))
      return `DNS name ${name} is in ${describeCertificate(ca)}'s excluded subtrees`;
  }
  for (const uri of names.uris) {
    const host = /^[a-z][a-z0-9+.-]*:\/\/([^/:?#]+)/i.exec(uri)?.[1];
    if (ca.permittedUri.length > 0) {
      if (host === undefined || !ca.permittedUri.some((base) => uriHostWithin(host, base)))
        return `URI ${uri} is outside ${describeCertificate(ca)}'s permitted subtrees`;
    }
    if (host !== undefined && ca.excludedUri.some((base) => uriHostWithin(host, base)))
      return `URI ${uri} is in ${describeCertificate(ca)}'s excluded subtrees`;
  }
  return undefined;
}

/** OpenSSL checks a leaf's CN against DNS constraints when it has no DNS SAN and the CN looks like a host name. */
function looksLikeHostname(cn: string): boolean {
  return cn.includes('.') && /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/.test(cn);
}

/** RFC 5280 §4.2.1.10 for dNSName: the name itself or any name under it ("example.com" or ".example.com"). */
export function dnsWithin(name: string, base: string): boolean {
  const n = name.toLowerCase();
  const b = base.toLowerCase().replace(/^\./, '');
  if (b === '') return true;
  return n === b || n.endsWith(`.${b}`);
}

/** RFC 5280 for URIs: a base of "host" matches that host only; ".domain" matches hosts under it. */
export function uriHostWithin(host: string, base: string): boolean {
  const h = host.toLowerCase();
  const b = base.toLowerCase();
  return b.startsWith('.') ? h.endsWith(b) : h === b;
}
