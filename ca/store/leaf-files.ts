import { readFile } from 'node:fs/promises';
import { issueForCsr, type IssuedLeaf } from '../credential.js';
import { parseCsr } from '../csr.js';
import { FileError } from '../errors.js';
import { writeFileAtomic } from '../fs.js';
import type { WorkloadIdentity } from '../identity.js';
import { loadIssuerCredential } from './issuer-dir.js';
import { encodePem } from '../pem.js';
import { DEFAULT_LEAF_POLICY, type LeafKeyType, type LeafPolicy } from '../policy.js';

/** One offline leaf: which issuer signs which CSR for whom, and where the chain goes. */
export interface LeafFileRequest {
  /** issuer directory (readIssuerDir: tls.crt/tls.key/ca.crt or crt.pem/key.pem) */
  readonly issuerDir: string;
  /** PKCS#10 request, PEM or DER */
  readonly csrPath: string;
  readonly identity: WorkloadIdentity;
  readonly lifetimeMs: number;
  /** key types accepted besides p256 */
  readonly alsoAllowKeyTypes?: readonly LeafKeyType[];
  /** where the leaf and then the issuer's chain are written (PEM, replaced atomically) */
  readonly outPath: string;
  readonly now: Date;
}

/** The policy of an offline leaf: the service's defaults with this lifetime, p256 and these key types. */
export function offlineLeafPolicy(lifetimeMs: number, alsoAllow: readonly LeafKeyType[] = []): LeafPolicy {
  return {
    ...DEFAULT_LEAF_POLICY,
    lifetimeMs,
    allowedKeyTypes: [...new Set<LeafKeyType>(['p256', ...alsoAllow])],
  };
}

/**
 * `leaf issue`: signs one CSR with the issuer in `issuerDir` through the same policy and fast path as
 * the service (issueForCsr), and writes the leaf followed by the issuer's chain to `outPath`.
 */
export async function issueLeafFile(r: LeafFileRequest): Promise<IssuedLeaf> {
  const cred = await loadIssuerCredential(r.issuerDir, { now: r.now });
  const csrBytes = await readFile(r.csrPath).catch((err: unknown) => {
    throw new FileError('ERR_FILE_NOT_FOUND', `cannot read ${r.csrPath}: ${(err as Error).message}`);
  });
  const policy = offlineLeafPolicy(r.lifetimeMs, r.alsoAllowKeyTypes);
  const issued = issueForCsr(cred, { csr: parseCsr(csrBytes), identity: r.identity, policy, now: r.now });
  const pem = [issued.der, ...issued.intermediates].map((d) => encodePem('CERTIFICATE', d)).join('');
  await writeFileAtomic(r.outPath, pem, { overwrite: true });
  return issued;
}
