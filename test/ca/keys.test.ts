import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  EC_ALGORITHMS,
  KEY_ALGORITHMS,
  createFileKeyStore,
  createMemoryKeyStore,
  describeSigner,
  generateKey,
  keyAlgorithmOf,
  parseKeyAlgorithm,
  type KeyStore,
  type Signer,
} from '../../ca/keys/index.js';
import { parsePrivateKeyPem } from '../../ca/keys/private-key-pem.js';
import { encodePem } from '../../ca/index.js';
import { writeFileAtomic } from '../../ca/store/index.js';
import { openssl } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { csrKey } from '../support/pki.js';
import { assertSignerContract } from '../support/signers.js';

/** An RSA public key of `bits` bits without generating primes (keyAlgorithmOf only reads the size). */
function rsaPublicKeyOfSize(bits: number): KeyObject {
  const n = Buffer.alloc(bits / 8, 0xff);
  return createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQAB' }, format: 'jwk' });
}

describe('key algorithms', () => {
  it('lists the anchor algorithms and the EC subset for issuers', () => {
    assert.deepEqual(KEY_ALGORITHMS, ['p256', 'p384', 'rsa2048', 'rsa3072', 'rsa4096']);
    assert.deepEqual(EC_ALGORITHMS, ['p256', 'p384']);
  });

  it('parseKeyAlgorithm accepts known names and refuses others with ERR_USAGE', () => {
    for (const alg of KEY_ALGORITHMS) assert.equal(parseKeyAlgorithm(alg), alg);
    for (const bad of ['P256', 'rsa1024', 'ed25519', '', 'p521']) {
      assert.throws(() => parseKeyAlgorithm(bad), { code: 'ERR_USAGE' }, bad);
    }
    assert.throws(() => parseKeyAlgorithm('rsa2048', EC_ALGORITHMS), { code: 'ERR_USAGE' });
    assert.equal(parseKeyAlgorithm('p384', EC_ALGORITHMS), 'p384');
  });

  it('generateKey makes keys that keyAlgorithmOf names back', async () => {
    for (const alg of ['p256', 'p384', 'rsa2048'] as const) {
      const key = await generateKey(alg);
      assert.equal(key.type, 'private');
      assert.equal(keyAlgorithmOf(key), alg);
      assert.equal(keyAlgorithmOf(createPublicKey(key)), alg);
    }
  });

  it('keyAlgorithmOf names RSA-3072 and RSA-4096 keys', () => {
    assert.equal(keyAlgorithmOf(rsaPublicKeyOfSize(3072)), 'rsa3072');
    assert.equal(keyAlgorithmOf(rsaPublicKeyOfSize(4096)), 'rsa4096');
  });

  it('keyAlgorithmOf refuses P-521, Ed25519 and RSA sizes other than 2048/3072/4096 with ERR_KEY_UNSUPPORTED', () => {
    for (const key of [csrKey('p521'), csrKey('ed25519'), csrKey('rsa1024'), rsaPublicKeyOfSize(2560)]) {
      assert.throws(() => keyAlgorithmOf(key), { code: 'ERR_KEY_UNSUPPORTED' });
    }
  });
});

describe('parsePrivateKeyPem', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;

  it('reads a PKCS#8 PRIVATE KEY block', () => {
    const key = parsePrivateKeyPem(ec.export({ type: 'pkcs8', format: 'pem' }).toString(), 'key');
    assert.ok(createPublicKey(key).equals(createPublicKey(ec)));
  });

  it('reads a SEC1 EC PRIVATE KEY block (cert-manager and step write ECDSA keys so)', () => {
    const key = parsePrivateKeyPem(ec.export({ type: 'sec1', format: 'pem' }).toString(), 'key');
    assert.ok(createPublicKey(key).equals(createPublicKey(ec)));
  });

  it('refuses PKCS#1, encrypted PKCS#8 and certificates with ERR_PEM_UNEXPECTED_TYPE', () => {
    const rsa = csrKey('rsa1024');
    for (const pem of [
      rsa.export({ type: 'pkcs1', format: 'pem' }).toString(),
      ec.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }).toString(),
      encodePem('CERTIFICATE', Buffer.from([0x30, 0x00])),
    ]) {
      assert.throws(
        () => parsePrivateKeyPem(pem, 'key'),
        { code: 'ERR_PEM_UNEXPECTED_TYPE' },
        pem.split('\n')[0],
      );
    }
  });

  it('refuses legacy encrypted PEM with ERR_PEM_HEADERS', () => {
    const pem = ec
      .export({ type: 'sec1', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'secret' })
      .toString();
    assert.match(pem, /Proc-Type/);
    assert.throws(() => parsePrivateKeyPem(pem, 'key'), { code: 'ERR_PEM_HEADERS' });
  });

  it('refuses a PRIVATE KEY block that is not PKCS#8 with ERR_FILE_INVALID', () => {
    const sec1InPkcs8Label = encodePem('PRIVATE KEY', ec.export({ type: 'sec1', format: 'der' }));
    assert.throws(() => parsePrivateKeyPem(sec1InPkcs8Label, 'key'), { code: 'ERR_FILE_INVALID' });
    assert.throws(() => parsePrivateKeyPem(encodePem('PRIVATE KEY', Buffer.from('garbage')), 'key'), {
      code: 'ERR_FILE_INVALID',
    });
  });

  it('refuses an unsupported key type with ERR_KEY_UNSUPPORTED', () => {
    const pem = csrKey('ed25519').export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.throws(() => parsePrivateKeyPem(pem, 'key'), { code: 'ERR_KEY_UNSUPPORTED' });
  });

  it('refuses empty text and two keys with ERR_PEM_MALFORMED', () => {
    const one = ec.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.throws(() => parsePrivateKeyPem('', 'key'), { code: 'ERR_PEM_MALFORMED' });
    assert.throws(() => parsePrivateKeyPem(one + one, 'key'), { code: 'ERR_PEM_MALFORMED' });
  });
});

/** The KeyStore contract, run against every implementation. */
function keyStoreContract(name: string, setup: () => { store: KeyStore; ref: (n: string) => string }): void {
  describe(`${name} key store contract`, () => {
    it('creates a key and loads the same key back', async () => {
      const { store, ref } = setup();
      const created = await store.create(ref('a'), 'p256');
      const loaded = await store.load(ref('a'));
      assert.equal(describeSigner(loaded).keyAlgorithm, 'p256');
      assert.ok(loaded.publicKeyDer.equals(created.publicKeyDer));
      const tbs = Buffer.from('x');
      assert.ok(verify('sha256', tbs, describeSigner(created).publicKey, await loaded.sign(tbs)));
    });

    it('creates P-384 keys', async () => {
      const { store, ref } = setup();
      assert.equal(describeSigner(await store.create(ref('p384'), 'p384')).keyAlgorithm, 'p384');
      assert.equal(describeSigner(await store.load(ref('p384'))).keyAlgorithm, 'p384');
    });

    it('refuses to replace a key without force with ERR_KEY_EXISTS, and keeps the old key', async () => {
      const { store, ref } = setup();
      const first = await store.create(ref('k'), 'p256');
      await assert.rejects(store.create(ref('k'), 'p256'), { code: 'ERR_KEY_EXISTS' });
      await assert.rejects(store.create(ref('k'), 'p256', { force: false }), { code: 'ERR_KEY_EXISTS' });
      assert.ok((await store.load(ref('k'))).publicKeyDer.equals(first.publicKeyDer));
    });

    it('replaces a key with force', async () => {
      const { store, ref } = setup();
      const first = await store.create(ref('k'), 'p256');
      const second = await store.create(ref('k'), 'p384', { force: true });
      const loaded = await store.load(ref('k'));
      assert.ok(loaded.publicKeyDer.equals(second.publicKeyDer));
      assert.ok(!loaded.publicKeyDer.equals(first.publicKeyDer));
    });

    it('fails to load a key that does not exist with ERR_FILE_NOT_FOUND', async () => {
      const { store, ref } = setup();
      await assert.rejects(store.load(ref('missing')), { code: 'ERR_FILE_NOT_FOUND' });
    });

    it('lets exactly one of two concurrent creates win (ERR_KEY_EXISTS for the other)', async () => {
      const { store, ref } = setup();
      const results = await Promise.allSettled([
        store.create(ref('r'), 'p256'),
        store.create(ref('r'), 'p256'),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(((lost[0] as PromiseRejectedResult).reason as { code?: unknown }).code, 'ERR_KEY_EXISTS');
      const winner = (won[0] as PromiseFulfilledResult<Signer>).value;
      assert.ok((await store.load(ref('r'))).publicKeyDer.equals(winner.publicKeyDer));
    });

    it('hands out Signers that keep to the Signer contract', async () => {
      const { store, ref } = setup();
      await store.create(ref('s'), 'p256');
      for (const signer of [await store.create(ref('t'), 'p384'), await store.load(ref('s'))]) {
        await assertSignerContract(signer);
      }
    });
  });
}

describe('key stores', () => {
  let dir: string;
  let cleanup: () => void;
  let n = 0;
  before(() => {
    ({ dir, cleanup } = tempDir('lanyard-keys-'));
  });
  after(() => {
    cleanup();
  });

  keyStoreContract('memory', () => ({ store: createMemoryKeyStore(), ref: (name) => name }));
  keyStoreContract('file', () => {
    const sub = join(dir, `contract-${n++}`);
    tempDirIn(sub);
    return { store: createFileKeyStore(), ref: (name) => join(sub, `${name}.pem`) };
  });

  describe('file key store', () => {
    it('writes a PKCS#8 PEM with mode 0600 that openssl reads', async () => {
      const path = join(dir, 'mode.pem');
      const previous = process.umask(0o000);
      try {
        await createFileKeyStore().create(path, 'p256');
      } finally {
        process.umask(previous);
      }
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const text = readFileSync(path, 'utf8');
      assert.match(text, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.ok(openssl(['pkey', '-in', path, '-noout']).ok);
    });

    it('keeps mode 0600 when a key is replaced with force', async () => {
      const path = join(dir, 'force.pem');
      const store = createFileKeyStore();
      await store.create(path, 'p256');
      await store.create(path, 'p256', { force: true });
      assert.equal(statSync(path).mode & 0o777, 0o600);
    });

    it('leaves the old file byte for byte and no temporary files when it refuses to overwrite', async () => {
      const sub = join(dir, 'exists');
      tempDirIn(sub);
      const path = join(sub, 'issuer.key');
      const store = createFileKeyStore();
      await store.create(path, 'p256');
      const before = readFileSync(path);
      await assert.rejects(store.create(path, 'p384'), { code: 'ERR_KEY_EXISTS' });
      assert.ok(readFileSync(path).equals(before));
      assert.deepEqual(readdirSync(sub), ['issuer.key']);
    });

    it('lets exactly one of two concurrent creates win', async () => {
      const sub = join(dir, 'race');
      tempDirIn(sub);
      const path = join(sub, 'k.pem');
      const store = createFileKeyStore();
      const results = await Promise.allSettled([store.create(path, 'p256'), store.create(path, 'p256')]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(lost.length, 1);
      assert.equal(((lost[0] as PromiseRejectedResult).reason as { code?: unknown }).code, 'ERR_KEY_EXISTS');
      const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<KeyStore['create']>>>).value;
      assert.ok((await store.load(path)).publicKeyDer.equals(winner.publicKeyDer));
      assert.deepEqual(readdirSync(sub), ['k.pem']);
    });

    it('stage writes nothing until commit, then the key (0600) and the files alongside as one change', async () => {
      const sub = join(dir, 'stage');
      tempDirIn(sub);
      const path = join(sub, 'tls.key');
      const staged = await createFileKeyStore().stage(path, 'p256');
      assert.deepEqual(readdirSync(sub), []);
      await staged.commit([{ path: join(sub, 'tls.crt'), data: 'cert', mode: 0o644 }]);
      assert.deepEqual(readdirSync(sub).sort(), ['tls.crt', 'tls.key']);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.ok((await createFileKeyStore().load(path)).publicKeyDer.equals(staged.signer.publicKeyDer));
    });

    it('stage without force commits nothing when one of the files exists (ERR_KEY_EXISTS)', async () => {
      const sub = join(dir, 'stage-exists');
      tempDirIn(sub);
      writeFileSync(join(sub, 'tls.crt'), 'old');
      const staged = await createFileKeyStore().stage(join(sub, 'tls.key'), 'p256');
      await assert.rejects(staged.commit([{ path: join(sub, 'tls.crt'), data: 'new' }]), {
        code: 'ERR_KEY_EXISTS',
      });
      assert.deepEqual(readdirSync(sub), ['tls.crt']);
      assert.equal(readFileSync(join(sub, 'tls.crt'), 'utf8'), 'old');
    });

    it('fromPem reads the key text a caller already read, as load would', async () => {
      const path = join(dir, 'from-pem.pem');
      const created = await createFileKeyStore().create(path, 'p384');
      const signer = createFileKeyStore().fromPem(readFileSync(path, 'utf8'), path);
      assert.ok(signer.publicKeyDer.equals(created.publicKeyDer));
      assert.throws(() => createFileKeyStore().fromPem('', path), { code: 'ERR_PEM_MALFORMED' });
    });

    it('loads a PKCS#8 key written by openssl', async () => {
      const path = join(dir, 'openssl.pem');
      const r = openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', path]);
      assert.ok(r.ok, r.stderr);
      assert.equal(describeSigner(await createFileKeyStore().load(path)).keyAlgorithm, 'p384');
    });

    it('refuses to load an encrypted, header-carrying or malformed key file', async () => {
      const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
      const files: [string, string, string][] = [
        [
          'pkcs1.pem',
          csrKey('rsa2048').export({ type: 'pkcs1', format: 'pem' }).toString(),
          'ERR_PEM_UNEXPECTED_TYPE',
        ],
        [
          'sec1-garbage.pem',
          encodePem('EC PRIVATE KEY' as 'PRIVATE KEY', Buffer.from('nope')),
          'ERR_FILE_INVALID',
        ],
        [
          'encrypted.pem',
          ec.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString(),
          'ERR_PEM_UNEXPECTED_TYPE',
        ],
        [
          'legacy.pem',
          ec.export({ type: 'sec1', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'pw' }).toString(),
          'ERR_PEM_HEADERS',
        ],
        ['der.key', ec.export({ type: 'pkcs8', format: 'der' }).toString('latin1'), 'ERR_PEM_MALFORMED'],
        ['garbage.pem', encodePem('PRIVATE KEY', Buffer.from('nope')), 'ERR_FILE_INVALID'],
      ];
      for (const [name, text, code] of files) {
        const path = join(dir, name);
        writeFileSync(path, text, 'latin1');
        await assert.rejects(createFileKeyStore().load(path), { code }, name);
      }
    });
  });

  describe('writeFileAtomic', () => {
    it('writes new files with mode 0644 by default and the given mode otherwise', async () => {
      const previous = process.umask(0o077);
      try {
        await writeFileAtomic(join(dir, 'plain.txt'), 'hello');
        await writeFileAtomic(join(dir, 'secret.txt'), Buffer.from('s'), { mode: 0o600 });
      } finally {
        process.umask(previous);
      }
      assert.equal(statSync(join(dir, 'plain.txt')).mode & 0o777, 0o644);
      assert.equal(statSync(join(dir, 'secret.txt')).mode & 0o777, 0o600);
      assert.equal(readFileSync(join(dir, 'plain.txt'), 'utf8'), 'hello');
    });

    it('replaces a file only with overwrite, otherwise ERR_KEY_EXISTS', async () => {
      const sub = join(dir, 'atomic');
      tempDirIn(sub);
      const path = join(sub, 'bundle.pem');
      await writeFileAtomic(path, 'one');
      await assert.rejects(writeFileAtomic(path, 'two'), { code: 'ERR_KEY_EXISTS' });
      assert.equal(readFileSync(path, 'utf8'), 'one');
      await writeFileAtomic(path, 'three', { overwrite: true });
      assert.equal(readFileSync(path, 'utf8'), 'three');
      assert.deepEqual(readdirSync(sub), ['bundle.pem']);
    });
  });
});

function tempDirIn(path: string): void {
  mkdirSync(path, { recursive: true });
}
