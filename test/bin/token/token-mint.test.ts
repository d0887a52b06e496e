import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import {
  DEV_TOKEN_ISSUER,
  createSigningKeyDir,
  loadOrCreateSigningKeyDir,
  loadSigningKeyDir,
  mintServiceAccountToken,
} from '../../../bin/token/index.js';
import { FakeClock } from '../../support/clock.js';
import { testDir } from '../../support/temp-dir.js';

/** RFC 7638 §3: SHA-256 over the required EC members in lexicographic order, no whitespace. */
function rfc7638(jwk: { crv?: unknown; x?: unknown; y?: unknown }): string {
  const json = `{"crv":"${String(jwk.crv)}","kty":"EC","x":"${String(jwk.x)}","y":"${String(jwk.y)}"}`;
  return createHash('sha256').update(json).digest('base64url');
}

describe('token signing key directory', () => {
  it('writes signing.key (PKCS#8, 0600) and jwks.json (public ES256 key, kid = RFC 7638 thumbprint)', async (t) => {
    const dir = testDir(t);
    const k = await createSigningKeyDir(join(dir, 'keys'), { clock: new FakeClock() });
    assert.equal(statSync(k.keyPath).mode & 0o777, 0o600);
    assert.match(readFileSync(k.keyPath, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    const jwks = JSON.parse(readFileSync(k.jwksPath, 'utf8')) as { keys: Record<string, unknown>[] };
    assert.equal(jwks.keys.length, 1);
    const pub = jwks.keys[0] as Record<string, unknown>;
    assert.deepEqual(Object.keys(pub).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    assert.equal(pub.alg, 'ES256');
    assert.equal(pub.use, 'sig');
    assert.equal(pub.crv, 'P-256');
    assert.equal(pub.kid, rfc7638(pub));
    assert.equal(k.kid, pub.kid);
  });

  it('refuses to replace an existing key without force (ERR_KEY_EXISTS), and replaces it with force', async (t) => {
    const dir = testDir(t);
    const clock = new FakeClock();
    const first = await createSigningKeyDir(dir, { clock });
    await assert.rejects(createSigningKeyDir(dir, { clock }), { code: 'ERR_KEY_EXISTS' });
    assert.equal((await loadSigningKeyDir(dir)).kid, first.kid);
    const second = await createSigningKeyDir(dir, { clock, force: true });
    assert.notEqual(second.kid, first.kid);
    assert.equal((await loadSigningKeyDir(dir)).kid, second.kid);
    assert.equal(statSync(second.keyPath).mode & 0o777, 0o600);
  });

  it('makes a key only where there is none, and reuses it after; a broken key is not replaced', async (t) => {
    const dir = testDir(t);
    const clock = new FakeClock();
    const first = await loadOrCreateSigningKeyDir(join(dir, 'keys'), { clock });
    assert.equal(first.created, true);
    const again = await loadOrCreateSigningKeyDir(join(dir, 'keys'), { clock });
    assert.equal(again.created, false);
    assert.equal(again.key.kid, first.key.kid);
    writeFileSync(first.key.jwksPath, JSON.stringify({ keys: [] }));
    await assert.rejects(loadOrCreateSigningKeyDir(join(dir, 'keys'), { clock }), {
      code: 'ERR_KEY_MISMATCH',
    });
  });

  it('loads the key it wrote, and notices a jwks.json that does not publish it', async (t) => {
    const dir = testDir(t);
    const made = await createSigningKeyDir(dir, { clock: new FakeClock() });
    const loaded = await loadSigningKeyDir(dir);
    assert.equal(loaded.kid, made.kid);
    assert.deepEqual(loaded.publicJwk, made.publicJwk);
    writeFileSync(made.jwksPath, JSON.stringify({ keys: [] }));
    await assert.rejects(loadSigningKeyDir(dir), { code: 'ERR_KEY_MISMATCH' });
    await assert.rejects(loadSigningKeyDir(join(dir, 'missing')), { code: 'ERR_FILE_NOT_FOUND' });
  });
});

describe('mintServiceAccountToken', () => {
  it('produces a token shaped like a Kubernetes projected service-account token', async (t) => {
    const dir = testDir(t);
    const clock = new FakeClock('2026-06-01T12:00:00.750Z');
    const k = await createSigningKeyDir(dir, { clock });
    const token = await mintServiceAccountToken({
      key: k.key,
      kid: k.kid,
      namespace: 'emojivoto',
      serviceAccount: 'web',
      serviceAccountUid: 'sa-uid',
      podName: 'web-5d8f7-abcde',
      podUid: 'pod-uid',
      now: clock.now(),
    });
    assert.deepEqual(decodeProtectedHeader(token), { alg: 'ES256', kid: k.kid });
    const c = decodeJwt(token);
    const iat = Math.floor(clock.now().getTime() / 1000);
    assert.equal(c.iss, DEV_TOKEN_ISSUER);
    assert.equal(c.sub, 'system:serviceaccount:emojivoto:web');
    assert.deepEqual(c.aud, ['identity.l5d.io']);
    assert.equal(c.iat, iat);
    assert.equal(c.nbf, iat);
    assert.equal(c.exp, iat + 3600);
    assert.deepEqual(c['kubernetes.io'], {
      namespace: 'emojivoto',
      serviceaccount: { name: 'web', uid: 'sa-uid' },
      pod: { name: 'web-5d8f7-abcde', uid: 'pod-uid' },
    });
  });

  it('honours issuer, audience and ttl, and refuses names that are not DNS-1123 labels', async (t) => {
    const dir = testDir(t);
    const clock = new FakeClock();
    const k = await createSigningKeyDir(dir, { clock });
    const base = { key: k.key, kid: k.kid, namespace: 'ns', serviceAccount: 'sa', now: clock.now() };
    const c = decodeJwt(
      await mintServiceAccountToken({
        ...base,
        issuer: 'https://oidc.example',
        audience: 'aud-x',
        ttlMs: 600_000,
      }),
    );
    assert.equal(c.iss, 'https://oidc.example');
    assert.deepEqual(c.aud, ['aud-x']);
    assert.equal((c.exp as number) - (c.iat as number), 600);
    assert.equal((c['kubernetes.io'] as { pod?: unknown }).pod, undefined);
    await assert.rejects(mintServiceAccountToken({ ...base, namespace: 'Bad' }), { code: 'ERR_USAGE' });
    await assert.rejects(mintServiceAccountToken({ ...base, serviceAccount: 'a:b' }), {
      code: 'ERR_USAGE',
    });
    await assert.rejects(mintServiceAccountToken({ ...base, ttlMs: 10 }), { code: 'ERR_USAGE' });
  });
});
