import assert from 'node:assert/strict';
import { verify } from 'node:crypto';
import { createAnchorCertificate, createIssuerCertificate } from '../../ca/profiles.js';
import { createKeyObjectSigner, describeSigner, generateKey, type Signer } from '../../ca/keys/index.js';
import { createLeafTemplate } from '../../ca/index.js';
import { opensslVerify } from './openssl.js';
import { spkiOf } from './pki.js';

/** The time the signer contract builds its certificates at. */
export const NOW = new Date('2026-01-01T00:00:00Z');

/**
 * A Signer that behaves like a key held elsewhere (an HSM, a KMS): `sign` answers with a Promise on a
 * later turn and with a plain Uint8Array, and nothing but the seam's three members is visible.
 */
export function remoteSigner(inner: Signer): Signer {
  return Object.freeze({
    algorithm: inner.algorithm,
    publicKeyDer: inner.publicKeyDer,
    sign: async (tbs: Uint8Array): Promise<Uint8Array> => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return new Uint8Array(await inner.sign(tbs));
    },
  });
}

/**
 * The Signer contract, for every implementation: only `algorithm`, `publicKeyDer` and `sign` are
 * visible; the algorithm fits the key; signatures (awaited when asynchronous) verify with the public
 * key; an anchor and an issuer signed by it pass openssl verify.
 */
export async function assertSignerContract(signer: Signer): Promise<void> {
  const keys = Object.keys(signer).sort();
  assert.deepEqual(keys, ['algorithm', 'publicKeyDer', 'sign']);
  const described = describeSigner(signer);
  const [a, b] = [Buffer.from('one'), Buffer.from('two')];
  const sigA = Buffer.from(await signer.sign(a));
  assert.ok(verify(described.hash, a, described.publicKey, sigA));
  assert.ok(!verify(described.hash, b, described.publicKey, sigA));
  assert.ok(verify(described.hash, b, described.publicKey, await signer.sign(b)));
  const anchor = await createAnchorCertificate({ signer, now: NOW });
  assert.ok(anchor.spki.equals(signer.publicKeyDer));
  const issuerKey = createKeyObjectSigner(await generateKey('p256'));
  const issuer = await createIssuerCertificate({
    anchor,
    anchorSigner: signer,
    issuerPublicKeyDer: issuerKey.publicKeyDer,
    now: NOW,
    cluster: 'east',
  });
  const leaf = createLeafTemplate(issuer, issuerKey).sign(LEAF_REQUEST);
  const v = opensslVerify({
    leaf: leaf.der,
    intermediates: [issuer.der],
    anchors: [anchor.der],
    purpose: 'sslserver',
    atSeconds: NOW.getTime() / 1000 + 60,
  });
  assert.ok(v.ok, v.stderr);
}

export const LEAF_REQUEST = {
  spki: spkiOf(),
  dnsName: 'web.default.serviceaccount.identity.linkerd.cluster.local',
  uri: 'spiffe://cluster.local/ns/default/sa/web',
  notBefore: NOW,
  notAfter: new Date(NOW.getTime() + 3_600_000),
};
