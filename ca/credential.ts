import { type CertificateInfo, describeCertificate, KEY_USAGE, parseCertificatesPem } from './certificate.js';
import {
  checkConstraintsEvaluable,
  createChainVerifier,
  nameConstraintViolation,
  signatureVerifies,
  type ChainVerifier,
} from './chain.js';
import type { ParsedCsr } from './csr.js';
import { CredentialError, PolicyError, FileError, InternalError } from './errors.js';
import type { WorkloadIdentity } from './identity.js';
import { hashFor, type Signer } from './keys/index.js';
import { createLeafTemplate, type LeafTemplate, type SignedLeaf } from './leaf-template.js';
import { checkCrossPathLen } from './profiles.js';
import {
  authorizeLeaf,
  judgeCsrKey,
  leafValidity,
  requestLeaf,
  type AuthorizedLeafRequest,
  type LeafPolicy,
} from './policy.js';

/** One issuer generation: certificate chain, key and trust anchors, validated together, immutable. */
export interface IssuerCredential {
  /** the issuing (intermediate) certificate */
  readonly certificate: CertificateInfo;
  /**
   * the issuer certificate first, then any further intermediates (a cross certificate: the issuer's
   * anchor B, issued by an older anchor A), each the certificate of the issuer of the one before; never
   * an anchor of the bundle
   */
  readonly chain: readonly CertificateInfo[];
  readonly anchors: readonly CertificateInfo[];
  /** the anchor the issuer chains to (the shortest path: a bundle anchor before a cross certificate) */
  readonly anchor: CertificateInfo;
  /** every anchor of the bundle the served chain reaches (at least one), in bundle order */
  readonly anchorsReached: readonly CertificateInfo[];
  /** earliest notAfter among every served chain certificate and every anchor reached: no leaf outlives it */
  readonly chainNotAfter: Date;
  /**
   * the paths every new leaf is verified on, verified once at load (issuer first): one to each anchor
   * reached, and one to each further served certificate taken as a root (a cross certificate is B by
   * subject and key, so the leaf also verifies for a workload that trusts B before B is in this bundle)
   */
  readonly leafPaths: readonly (readonly CertificateInfo[])[];
  readonly signer: Signer;
  readonly verifier: ChainVerifier;
  readonly template: LeafTemplate;
  /** the chain as sent with every leaf (DER, issuer first), computed once */
  readonly chainDer: readonly Buffer[];
  /** the issuer's subject key identifier, hex (for logs) */
  readonly issuerKeyIdHex: string | undefined;
  /** the CA certificates of the path that carry name constraints; usually none */
  readonly constrainedCas: readonly CertificateInfo[];
}

/** The name forms of every leaf (createLeafTemplate: empty subject, one DNS name and one URI, or one URI). */
const LEAF_NAME_FORMS = ['dns', 'uri'] as const;

export interface CredentialInput {
  /** PEM: the issuer certificate, optionally followed by further intermediates */
  readonly certificatePem: string;
  readonly signer: Signer;
  /** PEM: one or more trust anchors */
  readonly anchorsPem: string;
  readonly now: Date;
}

/**
 * Validates and assembles a credential: every anchor is a CA certificate, the key matches the
 * certificate, the certificate is a CA allowed to sign certificates, it chains to one of the anchors
 * at `now` (not expired), and no name constraint on its path (its own included) is one Lanyard cannot
 * evaluate for the leaves it signs (ERR_NAME_CONSTRAINTS_UNSUPPORTED). Certificates served after the
 * issuer's (a cross certificate) are checked by checkServedChain; the credential records every anchor
 * of the bundle the served chain reaches (anchorsReached) and the paths each leaf is verified on.
 */
export function createIssuerCredential(input: CredentialInput): IssuerCredential {
  const anchors = parseCertificatesPem(input.anchorsPem, 'trust anchors');
  // Every anchor is served as a bundle (/v1/bundle, SPIFFE) and written into workloads' ca.crt: only
  // CA certificates belong there, and a set with anything else is refused whole.
  const notCa = anchors.find((a) => !a.isCa);
  if (notCa !== undefined) {
    throw new CredentialError(
      'ERR_NOT_CA',
      `the trust anchors hold ${describeCertificate(notCa)}, which is not a CA certificate (basicConstraints CA:TRUE)`,
    );
  }
  const anchorDers = new Set(anchors.map((a) => a.der.toString('base64')));
  const chain = parseCertificatesPem(input.certificatePem, 'issuer certificate').filter(
    (c) => !anchorDers.has(c.der.toString('base64')),
  );
  const certificate = chain[0];
  if (certificate === undefined)
    throw new FileError('ERR_FILE_INVALID', 'the issuer certificate file holds only trust anchors');
  if (!certificate.spki.equals(input.signer.publicKeyDer)) {
    throw new CredentialError('ERR_KEY_MISMATCH', 'the issuer key does not match the issuer certificate');
  }
  if (
    !certificate.isCa ||
    (certificate.keyUsage !== undefined && (certificate.keyUsage & KEY_USAGE.keyCertSign) === 0)
  ) {
    throw new CredentialError(
      'ERR_NOT_CA',
      'the issuer certificate is not a CA allowed to sign certificates',
    );
  }
  checkServedChain(chain, anchors);
  const verifier = createChainVerifier({ anchors, intermediates: chain });
  const reached = reachAnchors(certificate, chain, anchors, input.now);
  // the anchor of the shortest path (bundle order among equals); when no anchor of the bundle is
  // reached, the search over all of them throws the most specific problem (as before)
  const path =
    reached.reduce<CertificateInfo[] | undefined>(
      (best, p) => (best === undefined || p.length < best.length ? p : best),
      undefined,
    ) ?? verifier.verify(certificate, input.now);
  const anchor = path[path.length - 1] as CertificateInfo;
  const anchorsReached = reached.map((p) => p[p.length - 1] as CertificateInfo);
  const leafPaths = [...reached, ...crossRootPaths(certificate, chain, input.now)];
  const chainNotAfter = new Date(Math.min(...[...chain, ...anchorsReached].map((c) => c.notAfter.getTime())));
  const constrainedCas = [...new Set(leafPaths.flat())].filter((c) => c.hasNameConstraints);
  // The chain check above holds each CA's constraints against the certificates below it, not the
  // issuer's own against the leaves it will sign: a subtree that would refuse every leaf refuses the
  // credential now, once, rather than every Certify call.
  for (const ca of constrainedCas) checkConstraintsEvaluable(ca, LEAF_NAME_FORMS, 'the leaves it signs');
  return Object.freeze({
    certificate,
    chain: Object.freeze(chain),
    anchors: Object.freeze(anchors),
    anchor,
    anchorsReached: Object.freeze(anchorsReached),
    chainNotAfter,
    leafPaths: Object.freeze(leafPaths.map((p) => Object.freeze(p))),
    signer: input.signer,
    verifier,
    template: createLeafTemplate(certificate, input.signer),
    chainDer: Object.freeze(chain.map((c) => c.der)),
    issuerKeyIdHex: certificate.subjectKeyId?.toString('hex'),
    constrainedCas: Object.freeze(constrainedCas),
  });
}

/**
 * Each certificate served after the issuer's must be the certificate of the issuer of the one before
 * (its subject and the key that signed it: ERR_CROSS_CERT_MISMATCH); when its issuer is named like
 * an anchor of the bundle, one of those anchors must have signed it (ERR_CROSS_CERT_UNTRUSTED; an
 * issuer outside the bundle is accepted: the bundle may already hold only the new anchor); and it must
 * not expire before the issuer certificate (ERR_CROSS_CERT_EXPIRES_FIRST); the anchor that signed it
 * must allow the CA certificates below it (its pathLen: ERR_CROSS_PATHLEN), else no workload that
 * trusts only that anchor could verify the served chain.
 */
function checkServedChain(chain: readonly CertificateInfo[], anchors: readonly CertificateInfo[]): void {
  const issuer = chain[0] as CertificateInfo;
  for (let i = 1; i < chain.length; i++) {
    const below = chain[i - 1] as CertificateInfo;
    const c = chain[i] as CertificateInfo;
    if (!c.subjectDer.equals(below.issuerDer) || !signatureVerifies(below, c)) {
      throw new CredentialError(
        'ERR_CROSS_CERT_MISMATCH',
        `${describeCertificate(c)}, served after ${describeCertificate(below)}, does not have the subject and key of its issuer`,
      );
    }
    const named = anchors.filter((a) => a.subjectDer.equals(c.issuerDer));
    const signer = named.find((a) => signatureVerifies(c, a));
    if (named.length > 0 && signer === undefined) {
      throw new CredentialError(
        'ERR_CROSS_CERT_UNTRUSTED',
        `${describeCertificate(c)} names a trust anchor of the bundle as its issuer, but no such anchor signed it`,
      );
    }
    // the issuer and the certificates served up to this one sit below that anchor
    if (signer !== undefined) checkCrossPathLen(signer, i + 1);
    if (c.notAfter.getTime() < issuer.notAfter.getTime()) {
      throw new CredentialError(
        'ERR_CROSS_CERT_EXPIRES_FIRST',
        `${describeCertificate(c)} expires at ${c.notAfter.toISOString()}, before the issuer certificate (${issuer.notAfter.toISOString()}); issue a shorter-lived issuer or a longer cross certificate`,
      );
    }
  }
}

/** The verified path from the issuer to each anchor of the bundle it reaches, in bundle order. */
function reachAnchors(
  certificate: CertificateInfo,
  chain: readonly CertificateInfo[],
  anchors: readonly CertificateInfo[],
  now: Date,
): CertificateInfo[][] {
  const paths: CertificateInfo[][] = [];
  for (const a of anchors) {
    try {
      paths.push(createChainVerifier({ anchors: [a], intermediates: chain }).verify(certificate, now));
    } catch {
      // not reached through the served chain
    }
  }
  return paths;
}

/** Each certificate served after the issuer's, taken as a root: the path from the issuer up to it. */
function crossRootPaths(
  certificate: CertificateInfo,
  chain: readonly CertificateInfo[],
  now: Date,
): CertificateInfo[][] {
  return chain
    .slice(1)
    .map((root, i) =>
      createChainVerifier({ anchors: [root], intermediates: chain.slice(1, i + 1) }).verify(certificate, now),
    );
}

export interface IssuedLeaf {
  readonly der: Buffer;
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER of the issuer certificate and further intermediates, in order (never the anchor) */
  readonly intermediates: readonly Buffer[];
  /** the anchor this leaf chains to */
  readonly anchor: CertificateInfo;
  /** every anchor of the bundle this leaf chains to (through the served intermediates) */
  readonly anchorsReached: readonly CertificateInfo[];
}

/** Held by this module alone: an IssuerSnapshot is built here and nowhere else. */
const SNAPSHOT_STAGE: unique symbol = Symbol('ca/credential snapshot');

/**
 * One credential generation and one instant, for a whole issuance: its chain was checked unexpired at
 * `now`, once. Built only by snapshotIssuer.
 */
export class IssuerSnapshot {
  declare private readonly brand: 'IssuerSnapshot';
  /** use snapshotIssuer */
  constructor(
    stage: typeof SNAPSHOT_STAGE,
    readonly credential: IssuerCredential,
    readonly now: Date,
  ) {
    if (stage !== SNAPSHOT_STAGE) throw new TypeError('built outside snapshotIssuer');
  }
}

/**
 * The snapshot stage: ERR_ISSUER_UNAVAILABLE when no credential is loaded or its chain has expired at
 * `now`; the only place a Certify call checks the chain's expiry.
 */
export function snapshotIssuer(credential: IssuerCredential | undefined, now: Date): IssuerSnapshot {
  if (credential === undefined)
    throw new CredentialError('ERR_ISSUER_UNAVAILABLE', 'no valid issuer credential is loaded');
  if (now.getTime() >= credential.chainNotAfter.getTime()) {
    throw new CredentialError(
      'ERR_ISSUER_UNAVAILABLE',
      `the issuer chain expired at ${credential.chainNotAfter.toISOString()}`,
    );
  }
  return new IssuerSnapshot(SNAPSHOT_STAGE, credential, now);
}

/**
 * The one issuing function: the leaf an authorized request asks for, from the issuer's template and
 * the policy (nothing from the CSR but its key), signed, then verified against the trust anchors
 * before it is returned. ERR_NAME_CONSTRAINTS when the issuer may not mint this identity,
 * ERR_INTERNAL when the self-check fails (nothing is returned then).
 */
export function issueLeaf(snapshot: IssuerSnapshot, request: AuthorizedLeafRequest): IssuedLeaf {
  return verifyLeaf(snapshot, signLeaf(snapshot, request));
}

/** Issue: within the issuer's name constraints, validity from the policy clamped to the chain, signed. */
function signLeaf(snapshot: IssuerSnapshot, request: AuthorizedLeafRequest): SignedLeaf {
  const cred = snapshot.credential;
  const dnsName = request.profile === 'istio' ? undefined : request.identity.dns;
  checkIssuerConstraints(cred, dnsName, request.identity.spiffeId);
  const { notBefore, notAfter } = leafValidity(snapshot.now, request.policy, cred.chainNotAfter);
  return cred.template.sign({
    spki: request.spki,
    subjectKeyId: request.subjectKeyId,
    dnsName,
    uri: request.identity.spiffeId,
    keyEncipherment: request.keyType.startsWith('rsa'),
    notBefore,
    notAfter,
  });
}

/**
 * Verify: the new leaf against the issuer's key (one signature check) and each path verified at load
 * (to every anchor reached, and to a served cross certificate taken as a root), at the snapshot's instant.
 */
function verifyLeaf(snapshot: IssuerSnapshot, leaf: SignedLeaf): IssuedLeaf {
  const cred = snapshot.credential;
  try {
    const hash = hashFor(cred.signer.algorithm);
    cred.verifier.verifyIssued(leaf, cred.certificate, hash, snapshot.now, cred.leafPaths);
  } catch (err) {
    throw new InternalError(
      'the newly signed certificate did not verify against the trust anchors; nothing was returned',
      { cause: err },
    );
  }
  return {
    der: leaf.der,
    serialHex: leaf.serialHex,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    intermediates: cred.chainDer,
    anchor: cred.anchor,
    anchorsReached: cred.anchorsReached,
  };
}

/**
 * The whole offline policy in one call, for a CSR parsed strictly (parseCsr): CSR names, key type,
 * the chain unexpired at `now`, then issueLeaf.
 */
export function issueForCsr(
  cred: IssuerCredential,
  req: {
    readonly csr: ParsedCsr;
    readonly identity: WorkloadIdentity;
    readonly policy: LeafPolicy;
    readonly now: Date;
  },
): IssuedLeaf {
  const names = requestLeaf(judgeCsrKey(req.csr, req.policy), req.identity.dns);
  const authorized = authorizeLeaf(names, req.identity, req.policy);
  return issueLeaf(snapshotIssuer(cred, req.now), authorized);
}

/** Only permitted/excluded subtrees are left to check: the rest was refused at load. */
function checkIssuerConstraints(cred: IssuerCredential, dnsName: string | undefined, uri: string): void {
  for (const ca of cred.constrainedCas) {
    const violation = nameConstraintViolation(ca, {
      dnsNames: dnsName === undefined ? [] : [dnsName],
      uris: [uri],
    });
    if (violation !== undefined) throw new PolicyError('ERR_NAME_CONSTRAINTS', violation);
  }
}
