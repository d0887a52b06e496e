// Measures the heap bytes per entry of the renewal caches (issuer/renewal-cache.ts) and compares them
// with the estimate their memory budget uses. Run: node --expose-gc --import tsx
// test/support/renewal-cache-bytes.ts [entries]; prints one JSON line. Entries are made the way the
// service makes them: names read from bytes (flat strings), the token's account parsed from a JSON
// `sub` claim, binary SHA-256 keys, a P-256 SPKI (91 bytes) and its key identifier.
import { createHash, randomBytes } from 'node:crypto';
import type { ParsedCsr, LeafKeyType } from '../../ca/index.js';
import { parseServiceAccountUsername } from '../../issuer/authn/common.js';
import { createRenewalCaches, csrEntryOf, type RenewalCache } from '../../issuer/renewal-cache.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

function heap(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const P256_SPKI_HEAD = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/** names of pod `i`: service account sa-NNNNNN in namespace ns-NN (typical lengths) */
function names(i: number): { ns: string; sa: string; dns: string } {
  const ns = `team-ns-${String(i % 40).padStart(2, '0')}`;
  const sa = `sa-${String(i).padStart(7, '0')}`;
  return { ns, sa, dns: `${sa}.${ns}.serviceaccount.identity.linkerd.cluster.local` };
}

function csrInput(i: number): ParsedCsr & { readonly keyType: LeafKeyType } {
  const point = Buffer.concat([Buffer.from([4]), randomBytes(64)]);
  return {
    // as the DER reader makes it: a flat latin1 string
    dnsNames: [Buffer.from(names(i).dns, 'latin1').toString('latin1')],
    commonName: undefined,
    otherSubjectAttributes: 0,
    emptyOrganizations: 0,
    uris: [],
    ipAddresses: [],
    emails: [],
    otherNames: 0,
    keyType: 'p256',
    spki: Buffer.concat([P256_SPKI_HEAD, point]),
    subjectKeyId: randomBytes(20),
    der: Buffer.alloc(0),
    publicKey: undefined as never,
  };
}

function keyOf(kind: string, i: number): string {
  return createHash('sha256').update(`${kind}${i}`).digest('binary');
}

function measure<V>(
  cache: RenewalCache<V>,
  n: number,
  entry: (i: number) => V,
): { measured: number; estimated: number } {
  const before = heap();
  for (let i = 0; i < n; i++) cache.set(keyOf('x', i), entry(i));
  const after = heap();
  if (cache.size !== n) throw new Error(`the cache holds ${cache.size} of ${n} entries`);
  return { measured: Math.round((after - before) / n), estimated: Math.round(cache.bytes / n) };
}

const n = Number(process.argv[2] ?? 10_000);
// a budget large enough to hold every entry
const caches = createRenewalCaches(1024 * 1024 * 1024);
const csr = measure(caches.csr, n, (i) => {
  const e = csrEntryOf(csrInput(i));
  if (e === undefined) throw new Error('not cacheable');
  return e;
});
const token = measure(caches.token, n, (i) => {
  const { ns, sa } = names(i);
  const claims = JSON.parse(`{"sub":"system:serviceaccount:${ns}:${sa}","exp":1798761600}`) as {
    sub: string;
  };
  const account = parseServiceAccountUsername(claims.sub);
  if (account === undefined) throw new Error('not an account');
  return { account, expiresAtMs: 1_798_761_600_000 + i };
});
process.stdout.write(`${JSON.stringify({ entries: n, csr, token })}\n`);
