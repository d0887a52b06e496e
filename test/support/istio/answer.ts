// The checks Istio's clients make on a CreateCertificate answer (cert_chain), from their sources:
// - istio-agent (citadel client CSRSign): fewer than two elements is an error ("invalid empty
//   CertChain"); the last element is the root bundle, the others the leaf and its chain.
// - ztunnel (identity/caclient.rs + tls WorkloadCertificate::new): the first element is the leaf
//   (exactly one certificate), every middle element is exactly one certificate, the last element is
//   split into possibly several roots; with impersonation on, the leaf's SPIFFE identity must equal
//   the one it asked for.
// Both then use the leaf with the private key they made, so the leaf's key must be the CSR's.
import { X509Certificate, type KeyObject } from 'node:crypto';
import type { IstioClientStyle } from './csr.js';

export type IstioAnswerProblem =
  'CHAIN_TOO_SHORT' | 'NOT_ONE_CERTIFICATE' | 'NO_ROOTS' | 'NOT_PEM' | 'KEY_MISMATCH' | 'IDENTITY_MISMATCH';

/** An answer a real client would reject; `problem` says which of its checks failed. */
export class IstioAnswerError extends Error {
  constructor(
    readonly problem: IstioAnswerProblem,
    message: string,
  ) {
    super(message);
    this.name = 'IstioAnswerError';
  }
}

export interface IstioAnswer {
  readonly leaf: X509Certificate;
  /** the middle elements, in order */
  readonly intermediates: readonly X509Certificate[];
  /** the last element, split */
  readonly roots: readonly X509Certificate[];
  /** the leaf's URI SANs */
  readonly uris: readonly string[];
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/g;

/** Every PEM block of `text` as DER certificates; anything but CERTIFICATE blocks (or no block) fails. */
export function pemCertificates(text: string, what: string): X509Certificate[] {
  const certs: X509Certificate[] = [];
  let rest = text;
  for (const m of text.matchAll(BLOCK)) {
    if (m[1] !== 'CERTIFICATE') throw new IstioAnswerError('NOT_PEM', `${what}: a ${String(m[1])} block`);
    try {
      certs.push(new X509Certificate(Buffer.from(String(m[2]).replace(/\s+/g, ''), 'base64')));
    } catch {
      throw new IstioAnswerError('NOT_PEM', `${what}: a CERTIFICATE block that does not parse`);
    }
    rest = rest.replace(m[0], '');
  }
  if (rest.trim() !== '') throw new IstioAnswerError('NOT_PEM', `${what}: text outside the PEM blocks`);
  return certs;
}

function exactlyOne(text: string, what: string): X509Certificate {
  const certs = pemCertificates(text, what);
  const [only] = certs;
  if (certs.length !== 1 || only === undefined)
    throw new IstioAnswerError('NOT_ONE_CERTIFICATE', `${what}: ${String(certs.length)} certificates`);
  return only;
}

/** The URI SANs of a certificate, in order (node's subjectAltName text, URI entries only). */
export function uriSans(cert: X509Certificate): string[] {
  const text = cert.subjectAltName ?? '';
  return text
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

/**
 * Checks `chain` as `style` would after asking for `requestedId` with `publicKey` in its CSR, and
 * returns it split. ztunnel compares the identity when it impersonates (its normal mode; `impersonating:
 * false` turns the check off, as ztunnel does without impersonation).
 */
export function checkIstioAnswer(
  chain: readonly string[],
  expect: { style: IstioClientStyle; requestedId: string; publicKey: KeyObject; impersonating?: boolean },
): IstioAnswer {
  if (chain.length < 2)
    throw new IstioAnswerError('CHAIN_TOO_SHORT', `cert_chain has ${String(chain.length)} element(s)`);
  const leaf = exactlyOne(String(chain[0]), 'cert_chain[0]');
  const intermediates = chain.slice(1, -1).map((c, i) => exactlyOne(c, `cert_chain[${String(i + 1)}]`));
  const roots = pemCertificates(String(chain[chain.length - 1]), 'the last element');
  if (roots.length === 0) throw new IstioAnswerError('NO_ROOTS', 'the last element holds no certificate');
  if (!leaf.publicKey.equals(expect.publicKey))
    throw new IstioAnswerError('KEY_MISMATCH', "the leaf does not carry the CSR's key");
  const uris = uriSans(leaf);
  if (expect.style === 'ztunnel' && expect.impersonating !== false && uris[0] !== expect.requestedId)
    throw new IstioAnswerError(
      'IDENTITY_MISMATCH',
      `asked for ${expect.requestedId}, got ${String(uris[0])}`,
    );
  return { leaf, intermediates, roots, uris };
}
