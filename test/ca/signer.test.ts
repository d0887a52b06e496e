import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { buildCsr, createLeafTemplate } from '../../ca/index.js';
import { createAnchorCertificate } from '../../ca/profiles.js';
import {
  createKeyObjectSigner,
  describeSigner,
  generateKey,
  type KeyAlgorithm,
  type Signer,
} from '../../ca/keys/index.js';
import { csrKey } from '../support/pki.js';
import { LEAF_REQUEST, NOW, assertSignerContract, remoteSigner } from '../support/signers.js';

describe('createKeyObjectSigner', () => {
  const cases: { alg: KeyAlgorithm; algorithm: string; hash: string; sigAlgHex: string }[] = [
    { alg: 'p256', algorithm: 'ecdsa-p256-sha256', hash: 'sha256', sigAlgHex: '300a06082a8648ce3d040302' },
    { alg: 'p384', algorithm: 'ecdsa-p384-sha384', hash: 'sha384', sigAlgHex: '300a06082a8648ce3d040303' },
    {
      alg: 'rsa2048',
      algorithm: 'rsa-pkcs1-sha256',
      hash: 'sha256',
      sigAlgHex: '300d06092a864886f70d01010b0500',
    },
  ];
  for (const { alg, algorithm, hash, sigAlgHex } of cases) {
    it(`signs with ${algorithm} for a ${alg} key and shows its public key, never its private key`, async () => {
      const key = await generateKey(alg);
      const signer = createKeyObjectSigner(key);
      const described = describeSigner(signer);
      assert.equal(described.keyAlgorithm, alg);
      assert.equal(signer.algorithm, algorithm);
      assert.equal(described.hash, hash);
      assert.equal(described.signatureAlgorithmDer.toString('hex'), sigAlgHex);
      assert.ok(signer.publicKeyDer.equals(createPublicKey(key).export({ type: 'spki', format: 'der' })));
      const tbs = Buffer.from('to be signed');
      assert.ok(verify(hash, tbs, described.publicKey, signer.sign(tbs)));
      assert.deepEqual(Object.keys(signer).sort(), ['algorithm', 'publicKeyDer', 'sign']);
      assert.ok(Object.isFrozen(signer));
    });
  }

  it('refuses an unsupported key with ERR_KEY_UNSUPPORTED', () => {
    assert.throws(() => createKeyObjectSigner(csrKey('ed25519')), { code: 'ERR_KEY_UNSUPPORTED' });
  });
});

describe('Signer contract', () => {
  for (const alg of ['p256', 'p384', 'rsa2048'] as const) {
    it(`holds for the node:crypto signer (${alg})`, async () => {
      await assertSignerContract(createKeyObjectSigner(await generateKey(alg)));
    });
  }

  it('holds for a signer that answers asynchronously, as an HSM would', async () => {
    await assertSignerContract(remoteSigner(createKeyObjectSigner(await generateKey('p256'))));
  });

  it('describeSigner refuses a signer whose algorithm does not fit its key (ERR_KEY_MISMATCH)', async () => {
    const p256 = createKeyObjectSigner(await generateKey('p256'));
    const lying: Signer = { ...p256, algorithm: 'ecdsa-p384-sha384' };
    assert.throws(() => describeSigner(lying), { code: 'ERR_KEY_MISMATCH' });
    await assert.rejects(createAnchorCertificate({ signer: lying, now: NOW }), { code: 'ERR_KEY_MISMATCH' });
  });

  it('refuses to build an anchor from a signature that does not verify (ERR_KEY_MISMATCH)', async () => {
    const p256 = createKeyObjectSigner(await generateKey('p256'));
    const other = createKeyObjectSigner(await generateKey('p256'));
    const wrong: Signer = {
      algorithm: p256.algorithm,
      publicKeyDer: p256.publicKeyDer,
      sign: (tbs) => other.sign(tbs),
    };
    await assert.rejects(createAnchorCertificate({ signer: wrong, now: NOW }), { code: 'ERR_KEY_MISMATCH' });
  });

  it('the leaf and CSR fast paths refuse an asynchronous signer with ERR_KEY_UNSUPPORTED', async () => {
    const inner = createKeyObjectSigner(await generateKey('p256'));
    const remote = remoteSigner(inner);
    const anchor = await createAnchorCertificate({ signer: inner, now: NOW });
    const template = createLeafTemplate(anchor, remote);
    assert.throws(() => template.sign(LEAF_REQUEST), { code: 'ERR_KEY_UNSUPPORTED' });
    assert.throws(() => buildCsr(remote, { dnsNames: ['a.example'] }), { code: 'ERR_KEY_UNSUPPORTED' });
  });
});
