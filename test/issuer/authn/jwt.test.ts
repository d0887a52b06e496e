import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT, base64url, exportJWK, type JWK } from 'jose';
import {
  createJwtAuthenticator,
  type JwtAuthenticator,
  type JwtAuthenticatorOptions,
} from '../../../issuer/authn/index.js';
import {
  DEV_TOKEN_ISSUER,
  createSigningKeyDir,
  mintServiceAccountToken,
  type SigningKey,
} from '../../../bin/token/index.js';
import { FakeClock } from '../../support/clock.js';
import { closedPort, startJwksServer, type JwksServer } from '../../support/jwks-server.js';
import { tempDir } from '../../support/temp-dir.js';
import { assertRejects, authenticatorContract, bytes, signal } from './contract.js';
import { defer } from '../../support/cleanup.js';
import { createRenewalCaches, type RenewalCaches } from '../../../issuer/renewal-cache.js';
import {
  shareRenewalCaches,
  type RenewalCacheBatch,
  type RenewalCacheSharing,
} from '../../../issuer/renewal-cache-sharing.js';

const SKEW_MS = 20_000;
const AUD = 'identity.l5d.io';

interface Fixture {
  readonly clock: FakeClock;
  readonly dir: string;
  readonly jwksPath: string;
  readonly signing: SigningKey;
  readonly cleanup: () => void;
}

async function fixture(): Promise<Fixture> {
  const clock = new FakeClock();
  const { dir, cleanup } = tempDir('lanyard-jwt-');
  const signing = await createSigningKeyDir(dir, { clock });
  return { clock, dir, jwksPath: signing.jwksPath, signing, cleanup };
}

function authFor(f: Fixture, extra: Partial<JwtAuthenticatorOptions> = {}): JwtAuthenticator {
  return createJwtAuthenticator({
    jwks: { file: f.jwksPath },
    issuer: DEV_TOKEN_ISSUER,
    clock: f.clock,
    ...extra,
  });
}

function mint(
  f: Fixture,
  namespace = 'emojivoto',
  serviceAccount = 'web',
  ttlMs = 3_600_000,
): Promise<string> {
  return mintServiceAccountToken({
    key: f.signing.key,
    kid: f.signing.kid,
    namespace,
    serviceAccount,
    ttlMs,
    now: f.clock.now(),
  });
}

/** Claims of a projected token at `nowS` (seconds); `null` in `patch` deletes a claim. */
function claims(nowS: number, patch: Record<string, unknown> = {}): Record<string, unknown> {
  const c: Record<string, unknown> = {
    iss: DEV_TOKEN_ISSUER,
    sub: 'system:serviceaccount:emojivoto:web',
    aud: [AUD],
    iat: nowS,
    nbf: nowS,
    exp: nowS + 3600,
    'kubernetes.io': { namespace: 'emojivoto', serviceaccount: { name: 'web', uid: 'u-1' } },
    ...patch,
  };
  for (const [k, v] of Object.entries(c)) if (v === null) c[k] = undefined;
  return JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
}

/** Signs arbitrary claims; `header` defaults to {alg ES256, kid}. */
function sign(
  key: KeyObject | Uint8Array,
  body: Record<string, unknown>,
  header: { alg: string; kid?: string },
): Promise<string> {
  return new SignJWT(body).setProtectedHeader(header).sign(key);
}

/** Replaces a file the way the kubelet and most tools do: a new file renamed over the old one. */
function replaceFile(path: string, data: string): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

const nowS = (f: Fixture): number => Math.floor(f.clock.now().getTime() / 1000);

authenticatorContract('jwt (JWKS file)', async () => {
  const f = await fixture();
  const authenticator = authFor(f);
  return {
    authenticator,
    validToken: (a) => mint(f, a.namespace, a.name),
    cleanup: async () => {
      await authenticator.close();
      f.cleanup();
    },
  };
});

describe('JWT authenticator: tokens', () => {
  let f: Fixture;
  let auth: JwtAuthenticator;
  before(async () => {
    f = await fixture();
    auth = authFor(f);
  });
  after(async () => {
    await auth.close();
    f.cleanup();
  });
  const check = (token: string, re?: string): Promise<Error> =>
    assertRejects(auth.authenticate(bytes(token), { signal: signal() }), 'ERR_TOKEN_INVALID', token, re);
  const ok = async (token: string): Promise<void> => {
    const a = await auth.authenticate(bytes(token), { signal: signal() });
    assert.deepEqual({ ...a }, { namespace: 'emojivoto', name: 'web' });
  };

  it('rejects an expired token', async () => {
    const t = nowS(f);
    await check(
      await sign(f.signing.key, claims(t, { iat: t - 7200, nbf: t - 7200, exp: t - 60 }), {
        alg: 'ES256',
        kid: f.signing.kid,
      }),
      'expired',
    );
  });

  it('accepts a token expired by less than the allowed clock skew', async () => {
    const t = nowS(f);
    await ok(
      await sign(f.signing.key, claims(t, { iat: t - 7200, nbf: t - 7200, exp: t - 10 }), {
        alg: 'ES256',
        kid: f.signing.kid,
      }),
    );
  });

  it('rejects a token that is not yet valid (nbf beyond the skew)', async () => {
    const t = nowS(f);
    await check(
      await sign(f.signing.key, claims(t, { nbf: t + 60 }), { alg: 'ES256', kid: f.signing.kid }),
      'not-yet-valid',
    );
  });

  it('accepts a token whose nbf is in the future by less than the skew', async () => {
    const t = nowS(f);
    await ok(
      await sign(f.signing.key, claims(t, { nbf: t + 10, iat: t + 10 }), {
        alg: 'ES256',
        kid: f.signing.kid,
      }),
    );
  });

  it('rejects a token issued in the future (iat beyond the skew), even with nbf passed', async () => {
    const t = nowS(f);
    for (const patch of [{ iat: t + 60 }, { iat: t + 60, nbf: null }]) {
      await check(
        await sign(f.signing.key, claims(t, patch), { alg: 'ES256', kid: f.signing.kid }),
        'not-yet-valid',
      );
    }
  });

  it('rejects a token without exp', async () => {
    const t = nowS(f);
    await check(
      await sign(f.signing.key, claims(t, { exp: null }), { alg: 'ES256', kid: f.signing.kid }),
      'claims',
    );
  });

  it('rejects a token for another audience', async () => {
    const t = nowS(f);
    await check(
      await sign(f.signing.key, claims(t, { aud: ['https://kubernetes.default.svc.cluster.local'] }), {
        alg: 'ES256',
        kid: f.signing.kid,
      }),
      'audience',
    );
  });

  it('accepts a token whose audiences include identity.l5d.io among others', async () => {
    const t = nowS(f);
    await ok(
      await sign(f.signing.key, claims(t, { aud: ['https://kubernetes.default.svc', AUD] }), {
        alg: 'ES256',
        kid: f.signing.kid,
      }),
    );
  });

  it('rejects a token from another issuer', async () => {
    const t = nowS(f);
    await check(
      await sign(f.signing.key, claims(t, { iss: 'https://evil.example' }), {
        alg: 'ES256',
        kid: f.signing.kid,
      }),
      'issuer',
    );
  });

  it('rejects an unsigned token (alg "none")', async () => {
    const enc = (o: object): string => base64url.encode(JSON.stringify(o));
    const token = `${enc({ alg: 'none', kid: f.signing.kid })}.${enc(claims(nowS(f)))}.`;
    await check(token, 'algorithm');
  });

  it('rejects HS256 tokens keyed with the public key (PEM or JWK bytes) — algorithm confusion', async () => {
    const publicPem = Buffer.from(
      (await import('node:crypto')).createPublicKey(f.signing.key).export({ type: 'spki', format: 'pem' }),
    );
    const jwkBytes = Buffer.from(JSON.stringify(f.signing.publicJwk));
    const jwksBytes = Buffer.from(JSON.stringify(f.signing.jwks));
    for (const secret of [publicPem, jwkBytes, jwksBytes]) {
      await check(await sign(secret, claims(nowS(f)), { alg: 'HS256', kid: f.signing.kid }), 'algorithm');
    }
  });

  it('rejects a token with a tampered signature', async () => {
    const token = await mint(f);
    const [h, p, s] = token.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[10] = (sig[10] as number) ^ 0x01;
    await check(`${h}.${p}.${sig.toString('base64url')}`, 'signature');
  });

  it('rejects a token whose claims were changed after signing', async () => {
    const token = await mint(f, 'emojivoto', 'web');
    const [h, , s] = token.split('.') as [string, string, string];
    const forged = base64url.encode(
      JSON.stringify(claims(nowS(f), { sub: 'system:serviceaccount:linkerd:linkerd-identity' })),
    );
    await check(`${h}.${forged}.${s}`, 'signature');
  });

  it('rejects subjects that are not system:serviceaccount:<ns>:<sa> with DNS-1123 labels', async () => {
    const t = nowS(f);
    for (const sub of [
      'system:serviceaccount:emojivoto',
      'system:serviceaccount:emojivoto:web:extra',
      'system:serviceaccount:Emojivoto:web',
      'system:serviceaccount:emojivoto:web_1',
      'system:serviceaccount::web',
      'system:node:worker-1',
      'alice',
    ]) {
      await check(
        await sign(f.signing.key, claims(t, { sub, 'kubernetes.io': null }), {
          alg: 'ES256',
          kid: f.signing.kid,
        }),
        'subject',
      );
    }
    await check(
      await sign(f.signing.key, claims(t, { sub: 42, 'kubernetes.io': null }), {
        alg: 'ES256',
        kid: f.signing.kid,
      }),
    );
  });

  it('rejects a token whose kubernetes.io claim disagrees with its subject', async () => {
    const t = nowS(f);
    for (const k8s of [
      { namespace: 'linkerd', serviceaccount: { name: 'web' } },
      { namespace: 'emojivoto', serviceaccount: { name: 'voting' } },
      { namespace: 'emojivoto' },
      { serviceaccount: { name: 'web' } },
      'emojivoto',
    ]) {
      await check(
        await sign(f.signing.key, claims(t, { 'kubernetes.io': k8s }), { alg: 'ES256', kid: f.signing.kid }),
        'subject',
      );
    }
  });

  it('accepts a token without the kubernetes.io claim when the subject is well-formed', async () => {
    await ok(
      await sign(f.signing.key, claims(nowS(f), { 'kubernetes.io': null }), {
        alg: 'ES256',
        kid: f.signing.kid,
      }),
    );
  });

  it('rejects a token that is not a JWT at all', async () => {
    for (const token of [
      'not-a-jwt',
      'a.b',
      'a.b.c.d',
      'e30.e30.',
      `${'x'.repeat(40)}.${'y'.repeat(40)}.${'z'.repeat(40)}`,
    ]) {
      await check(token);
    }
  });

  it('rejects a token signed by the right kind of key that is not in the JWKS, under the JWKS kid', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await check(await sign(privateKey, claims(nowS(f)), { alg: 'ES256', kid: f.signing.kid }), 'signature');
  });

  it('rejects an allowed algorithm the JWKS key cannot verify (ES384 header on a P-256 key)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    await check(await sign(privateKey, claims(nowS(f)), { alg: 'ES384', kid: f.signing.kid }), 'key');
  });

  it('rejects a token whose algorithm is outside the configured list', async (ctx) => {
    const rsOnly = authFor(f, { algorithms: ['RS256'] });
    defer(ctx, () => rsOnly.close());
    const token = await mint(f);
    await assertRejects(
      rsOnly.authenticate(bytes(token), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      token,
      'algorithm',
    );
  });
});

describe('JWT authenticator: keys', () => {
  it('verifies RS256 and ES256 tokens against a JWKS holding both, choosing the key by kid', async (ctx) => {
    const f = await fixture();
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaJwk: JWK = { ...(await exportJWK(publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
    writeFileSync(f.jwksPath, JSON.stringify({ keys: [rsaJwk, f.signing.publicJwk] }));
    const auth = authFor(f);
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    const rs = await sign(privateKey, claims(nowS(f)), { alg: 'RS256', kid: 'rsa-1' });
    const es = await mint(f);
    assert.equal((await auth.authenticate(bytes(rs), { signal: signal() })).name, 'web');
    assert.equal((await auth.authenticate(bytes(es), { signal: signal() })).name, 'web');
    // the RSA key signed, but the header claims the EC key's kid
    const crossed = await sign(privateKey, claims(nowS(f)), { alg: 'RS256', kid: f.signing.kid });
    await assertRejects(
      auth.authenticate(bytes(crossed), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      crossed,
    );
  });

  it("tries every key that shares the token's kid (a JWKS with duplicate kids), and no other", async (ctx) => {
    const f = await fixture();
    const { privateKey: otherKey, publicKey: otherPub } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { privateKey: rsaKey, publicKey: rsaPub } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const { privateKey: strayKey, publicKey: strayPub } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = f.signing.kid;
    writeFileSync(
      f.jwksPath,
      JSON.stringify({
        keys: [
          { ...(await exportJWK(otherPub)), kid, alg: 'ES256', use: 'sig' },
          { ...(await exportJWK(rsaPub)), kid, alg: 'RS256', use: 'sig' },
          f.signing.publicJwk,
          { ...(await exportJWK(strayPub)), kid: 'stray', alg: 'ES256', use: 'sig' },
        ],
      }),
    );
    const auth = authFor(f);
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    // the first, second and third key under the kid each verify their own tokens
    for (const [key, alg] of [
      [otherKey, 'ES256'],
      [rsaKey, 'RS256'],
      [f.signing.key, 'ES256'],
    ] as const) {
      const t = await sign(key, claims(nowS(f)), { alg, kid });
      assert.equal((await auth.authenticate(bytes(t), { signal: signal() })).name, 'web', alg);
    }
    // a key published under another kid is not tried
    const stray = await sign(strayKey, claims(nowS(f)), { alg: 'ES256', kid });
    await assertRejects(
      auth.authenticate(bytes(stray), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      stray,
      'signature',
    );
  });

  it('never uses symmetric ("oct") or private JWKs from the JWKS', async (ctx) => {
    const f = await fixture();
    const secret = Buffer.from('a shared secret that must never verify anything');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privJwk = { ...(await exportJWK(privateKey)), kid: 'priv', alg: 'ES256' };
    writeFileSync(
      f.jwksPath,
      JSON.stringify({
        keys: [{ kty: 'oct', k: secret.toString('base64url'), kid: 'oct-1' }, privJwk, f.signing.publicJwk],
      }),
    );
    const auth = authFor(f);
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    const hs = await sign(secret, claims(nowS(f)), { alg: 'HS256', kid: 'oct-1' });
    await assertRejects(auth.authenticate(bytes(hs), { signal: signal() }), 'ERR_TOKEN_INVALID', hs);
    const es = await sign(privateKey, claims(nowS(f)), { alg: 'ES256', kid: 'priv' });
    await assertRejects(auth.authenticate(bytes(es), { signal: signal() }), 'ERR_TOKEN_INVALID', es, 'key');
    assert.equal((await auth.authenticate(bytes(await mint(f)), { signal: signal() })).name, 'web');
  });

  it('re-reads the JWKS only once for repeated unknown kids within the refetch interval', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f, { refetchIntervalMs: 30_000 });
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    await auth.authenticate(bytes(await mint(f)), { signal: signal() });
    assert.equal(auth.stats().jwksLoads, 1);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const kid of ['unknown-1', 'unknown-2', 'unknown-1', 'unknown-3']) {
      const t = await sign(privateKey, claims(nowS(f)), { alg: 'ES256', kid });
      await assertRejects(auth.authenticate(bytes(t), { signal: signal() }), 'ERR_TOKEN_INVALID', t, 'key');
      f.clock.advance(1_000);
    }
    assert.equal(auth.stats().unknownKidRefetches, 1);
    assert.equal(auth.stats().jwksLoads, 2);
    f.clock.advance(30_000);
    const t = await sign(privateKey, claims(nowS(f)), { alg: 'ES256', kid: 'unknown-4' });
    await assertRejects(auth.authenticate(bytes(t), { signal: signal() }), 'ERR_TOKEN_INVALID', t);
    assert.equal(auth.stats().unknownKidRefetches, 2);
  });

  it('does not re-read a JWKS it loaded during the same call for an unknown kid', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f);
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const t = await sign(privateKey, claims(nowS(f)), { alg: 'ES256', kid: 'unknown' });
    await assertRejects(auth.authenticate(bytes(t), { signal: signal() }), 'ERR_TOKEN_INVALID', t, 'key');
    assert.equal(auth.stats().jwksLoads, 1);
    assert.equal(auth.stats().unknownKidRefetches, 0);
  });

  it('shares one re-read among concurrent calls with unknown kids', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f);
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    await auth.refresh();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const tokens = await Promise.all(
      Array.from({ length: 8 }, (_, i) => sign(privateKey, claims(nowS(f)), { alg: 'ES256', kid: `k-${i}` })),
    );
    const results = await Promise.allSettled(
      tokens.map((t) => auth.authenticate(bytes(t), { signal: signal() })),
    );
    assert.ok(results.every((r) => r.status === 'rejected'));
    assert.equal(auth.stats().jwksLoads, 2);
  });

  it('accepts a token from a key added to the JWKS file (rotation) on its first unknown kid', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f, { fileCheckIntervalMs: 3_600_000 });
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    await auth.refresh();
    const next = await createSigningKeyDir(join(f.dir, 'next'), { clock: f.clock });
    replaceFile(f.jwksPath, JSON.stringify({ keys: [f.signing.publicJwk, next.publicJwk] }));
    const token = await mintServiceAccountToken({
      key: next.key,
      kid: next.kid,
      namespace: 'emojivoto',
      serviceAccount: 'web',
      now: f.clock.now(),
    });
    assert.equal((await auth.authenticate(bytes(token), { signal: signal() })).name, 'web');
    assert.equal(auth.stats().unknownKidRefetches, 1);
  });

  it('re-reads the JWKS file when it changes, and stops accepting cached tokens of a removed key', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f, { fileCheckIntervalMs: 1_000 });
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    const old = await mint(f);
    assert.equal((await auth.authenticate(bytes(old), { signal: signal() })).name, 'web');
    const next = await createSigningKeyDir(join(f.dir, 'next'), { clock: f.clock });
    replaceFile(f.jwksPath, JSON.stringify(next.jwks));
    f.clock.advance(1_000);
    const fresh = await mintServiceAccountToken({
      key: next.key,
      kid: next.kid,
      namespace: 'emojivoto',
      serviceAccount: 'web',
      now: f.clock.now(),
    });
    assert.equal((await auth.authenticate(bytes(fresh), { signal: signal() })).name, 'web');
    assert.equal(auth.stats().unknownKidRefetches, 0, 'the change was found by mtime, not by an unknown kid');
    await assertRejects(auth.authenticate(bytes(old), { signal: signal() }), 'ERR_TOKEN_INVALID', old, 'key');
  });

  it('keeps the previous keys when the changed JWKS file does not parse', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f, { fileCheckIntervalMs: 0 });
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    await auth.refresh();
    replaceFile(f.jwksPath, '{"keys": [');
    const token = await mint(f);
    assert.equal((await auth.authenticate(bytes(token), { signal: signal() })).name, 'web');
  });

  it('reports a missing JWKS file as ERR_AUTHENTICATOR_UNAVAILABLE', async (ctx) => {
    const f = await fixture();
    const auth = createJwtAuthenticator({
      jwks: { file: join(f.dir, 'missing.json') },
      issuer: DEV_TOKEN_ISSUER,
      clock: f.clock,
    });
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    const token = await mint(f);
    await assertRejects(
      auth.authenticate(bytes(token), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      token,
    );
  });
});

describe('JWT authenticator: cache', () => {
  it("takes another worker's success only for a key it holds itself (a worker that dropped a key refuses its tokens)", async (ctx) => {
    const f = await fixture();
    defer(ctx, () => {
      f.cleanup();
    });
    const sent: RenewalCacheBatch[] = [];
    type Worker = { auth: JwtAuthenticator; caches: RenewalCaches; sharing: RenewalCacheSharing };
    const worker = (fileCheckIntervalMs: number): Worker => {
      const caches = createRenewalCaches();
      const auth = authFor(f, { fileCheckIntervalMs, cache: { successes: caches.token } });
      defer(ctx, () => auth.close());
      const sharing = shareRenewalCaches({
        caches,
        clock: f.clock,
        scheduler: f.clock,
        send: (batch) => sent.push(JSON.parse(JSON.stringify(batch)) as RenewalCacheBatch),
      });
      return { auth, caches, sharing };
    };
    // a does not look at the JWKS file again during the test; b does every second
    const a = worker(3_600_000);
    const b = worker(1_000);
    /** what was sent (after the batching interval) reaches `to` */
    const deliver = (to: Worker): void => {
      f.clock.advance(100);
      for (const batch of sent.splice(0)) to.sharing.receive(batch);
    };
    await a.auth.refresh();
    await b.auth.refresh();
    const old = await mint(f);
    await a.auth.authenticate(bytes(old), { signal: signal() });
    deliver(b);
    const verified = b.auth.stats().verifications;
    assert.equal((await b.auth.authenticate(bytes(old), { signal: signal() })).name, 'web');
    assert.equal(b.auth.stats().verifications, verified, "a's success answered on b: same key");
    // the key is replaced; b notices (on its next verification) and clears, and its clear reaches a
    const next = await createSigningKeyDir(join(f.dir, 'next'), { clock: f.clock });
    replaceFile(f.jwksPath, JSON.stringify(next.jwks));
    f.clock.advance(1_000);
    const fresh = await mintServiceAccountToken({
      key: next.key,
      kid: next.kid,
      namespace: 'emojivoto',
      serviceAccount: 'web',
      now: f.clock.now(),
    });
    assert.equal((await b.auth.authenticate(bytes(fresh), { signal: signal() })).name, 'web');
    await assertRejects(
      b.auth.authenticate(bytes(old), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      old,
      'key',
    );
    deliver(a);
    assert.equal(a.caches.token.size, 0);
    // a has not re-read the file: it still verifies the old key's token, after the clear, and shares it
    assert.equal((await a.auth.authenticate(bytes(old), { signal: signal() })).name, 'web');
    deliver(b);
    assert.equal(b.caches.token.size, 0, 'not taken: b no longer holds the key');
    await assertRejects(
      b.auth.authenticate(bytes(old), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      old,
      'key',
    );
  });

  it('answers a repeated token from the cache without resolving a key or verifying again', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f);
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    const token = await mint(f);
    await auth.authenticate(bytes(token), { signal: signal() });
    const before = auth.stats();
    for (let i = 0; i < 5; i++) await auth.authenticate(bytes(token), { signal: signal() });
    const after = auth.stats();
    assert.equal(after.keyResolutions, before.keyResolutions);
    assert.equal(after.verifications, before.verifications);
    assert.equal(after.cacheHits, before.cacheHits + 5);
  });

  it('rejects a cached token once the clock passes its exp (beyond the skew)', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f);
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    const token = await mint(f, 'emojivoto', 'web', 600_000);
    await auth.authenticate(bytes(token), { signal: signal() });
    f.clock.advance(600_000 - 1_000);
    await auth.authenticate(bytes(token), { signal: signal() });
    assert.equal(auth.stats().cacheHits, 1);
    // past exp the cache no longer answers; full verification still allows the skew
    f.clock.advance(2_000);
    await auth.authenticate(bytes(token), { signal: signal() });
    assert.equal(auth.stats().cacheHits, 1);
    assert.equal(auth.stats().verifications, 2);
    f.clock.advance(SKEW_MS);
    await assertRejects(
      auth.authenticate(bytes(token), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      token,
      'expired',
    );
  });

  it('keeps at most cache.maxEntries tokens, forgetting the least recently used', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f, { cache: { maxEntries: 2 } });
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    const [a, b, c] = await Promise.all([mint(f, 'n', 'a'), mint(f, 'n', 'b'), mint(f, 'n', 'c')]);
    for (const t of [a, b, c]) await auth.authenticate(bytes(t), { signal: signal() });
    const v = auth.stats().verifications;
    await auth.authenticate(bytes(c), { signal: signal() });
    assert.equal(auth.stats().verifications, v);
    await auth.authenticate(bytes(a), { signal: signal() });
    assert.equal(auth.stats().verifications, v + 1);
  });

  it('does not cache rejections', async (ctx) => {
    const f = await fixture();
    const auth = authFor(f);
    defer(ctx, () => {
      f.cleanup();
    });
    defer(ctx, () => auth.close());
    const t = nowS(f);
    const early = await sign(f.signing.key, claims(t, { nbf: t + 120 }), {
      alg: 'ES256',
      kid: f.signing.kid,
    });
    await assertRejects(auth.authenticate(bytes(early), { signal: signal() }), 'ERR_TOKEN_INVALID', early);
    f.clock.advance(120_000);
    assert.equal((await auth.authenticate(bytes(early), { signal: signal() })).name, 'web');
  });
});

describe('JWT authenticator: JWKS URL', () => {
  let f: Fixture;
  let server: JwksServer;
  let caFile: string;
  before(async () => {
    f = await fixture();
    server = await startJwksServer(f.signing.jwks);
    caFile = join(f.dir, 'jwks-ca.crt');
    writeFileSync(caFile, server.caPem);
  });
  after(async () => {
    await server.close();
    f.cleanup();
  });
  const urlAuth = (extra: Partial<JwtAuthenticatorOptions> = {}): JwtAuthenticator =>
    createJwtAuthenticator({
      jwks: { url: server.url, caFile },
      issuer: DEV_TOKEN_ISSUER,
      clock: f.clock,
      ...extra,
    });

  it('fetches the JWKS over HTTPS trusting the given CA and accepts a valid token', async (ctx) => {
    server.serve(f.signing.jwks);
    const auth = urlAuth();
    defer(ctx, () => auth.close());
    const token = await mint(f);
    assert.equal((await auth.authenticate(bytes(token), { signal: signal() })).name, 'web');
  });

  it('sends the bearer token from tokenFile, re-read on every fetch', async (ctx) => {
    server.serve(f.signing.jwks);
    const tokenFile = join(f.dir, 'jwks-reader.token');
    writeFileSync(tokenFile, 'reader-token-1\n');
    server.requireBearer('reader-token-1');
    const withToken = urlAuth({ jwks: { url: server.url, caFile, tokenFile } });
    const without = urlAuth();
    defer(ctx, () => without.close());
    defer(ctx, () => withToken.close());
    defer(ctx, () => {
      server.requireBearer(undefined);
    });
    await withToken.refresh();
    assert.equal(server.lastAuthorization, 'Bearer reader-token-1');
    await assert.rejects(without.refresh(), { code: 'ERR_AUTHENTICATOR_UNAVAILABLE' });
    writeFileSync(tokenFile, 'reader-token-2\n');
    server.requireBearer('reader-token-2');
    await withToken.refresh();
    assert.equal(server.lastAuthorization, 'Bearer reader-token-2');
  });

  it('re-fetches once for repeated unknown kids within the interval', async (ctx) => {
    server.serve(f.signing.jwks);
    const auth = urlAuth();
    defer(ctx, () => auth.close());
    await auth.refresh();
    const hits = server.hits;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (let i = 0; i < 3; i++) {
      const t = await sign(privateKey, claims(nowS(f)), { alg: 'ES256', kid: 'not-published' });
      await assertRejects(auth.authenticate(bytes(t), { signal: signal() }), 'ERR_TOKEN_INVALID', t, 'key');
    }
    assert.equal(server.hits, hits + 1);
  });

  it('is unavailable when the JWKS URL does not answer (connection refused)', async (ctx) => {
    const port = await closedPort();
    const auth = createJwtAuthenticator({
      jwks: { url: `https://127.0.0.1:${port}/openid/v1/jwks`, caFile },
      issuer: DEV_TOKEN_ISSUER,
      clock: f.clock,
    });
    defer(ctx, () => auth.close());
    const token = await mint(f);
    await assertRejects(
      auth.authenticate(bytes(token), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      token,
    );
    // within the retry backoff it fails fast without a new attempt; after it, it tries again
    await assertRejects(
      auth.authenticate(bytes(token), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      token,
    );
  });

  it('is unavailable when the JWKS URL answers an error status or garbage', async () => {
    for (const answer of [
      { status: 500, body: 'oops' },
      { status: 200, body: '<html>' },
      { status: 200, body: '{"keys": []}' },
      { status: 200, body: '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}' },
    ]) {
      server.serve(answer);
      const auth = urlAuth();
      try {
        const token = await mint(f);
        await assertRejects(
          auth.authenticate(bytes(token), { signal: signal() }),
          'ERR_AUTHENTICATOR_UNAVAILABLE',
          token,
        );
      } finally {
        await auth.close();
      }
    }
    server.serve(f.signing.jwks);
  });

  it('is unavailable when the server certificate is not trusted (no CA given)', async (ctx) => {
    server.serve(f.signing.jwks);
    const auth = createJwtAuthenticator({
      jwks: { url: server.url },
      issuer: DEV_TOKEN_ISSUER,
      clock: f.clock,
    });
    defer(ctx, () => auth.close());
    const token = await mint(f);
    await assertRejects(
      auth.authenticate(bytes(token), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      token,
    );
  });

  it('stops waiting when the caller aborts, and times out a JWKS fetch that hangs', async (ctx) => {
    server.serve(f.signing.jwks);
    server.hold();
    const auth = urlAuth({ fetchTimeoutMs: 200, retryBackoffMs: 0 });
    defer(ctx, () => auth.close());
    defer(ctx, () => {
      server.release();
    });
    const token = await mint(f);
    const ac = new AbortController();
    const p = auth.authenticate(bytes(token), { signal: ac.signal });
    setTimeout(() => {
      ac.abort();
    }, 20);
    const t0 = performance.now();
    await assertRejects(p, 'ERR_AUTHENTICATOR_UNAVAILABLE', token, 'cancelled');
    assert.ok(performance.now() - t0 < 150);
    await assertRejects(
      auth.authenticate(bytes(token), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      token,
    );
  });
});

describe('createJwtAuthenticator options', () => {
  const clock = new FakeClock();
  const base = { jwks: { file: '/nonexistent/jwks.json' }, issuer: DEV_TOKEN_ISSUER, clock };

  it('refuses "none" and HMAC algorithms, and unknown ones', () => {
    for (const algorithms of [['none'], ['HS256'], ['RS256', 'HS512'], ['hs384'], ['XYZ'], []]) {
      assert.throws(
        () => createJwtAuthenticator({ ...base, algorithms }),
        { code: 'ERR_USAGE' },
        algorithms.join(),
      );
    }
  });

  it('requires an issuer and an https JWKS URL', () => {
    assert.throws(() => createJwtAuthenticator({ ...base, issuer: '' }), { code: 'ERR_USAGE' });
    assert.throws(() => createJwtAuthenticator({ ...base, jwks: { url: 'http://127.0.0.1/jwks' } }), {
      code: 'ERR_USAGE',
    });
    assert.throws(() => createJwtAuthenticator({ ...base, jwks: { url: 'not a url' } }), {
      code: 'ERR_USAGE',
    });
  });

  it('accepts the default algorithm list and explicit allowed ones', async () => {
    for (const algorithms of [undefined, ['ES256'], ['RS256', 'PS512', 'EdDSA']]) {
      const a = createJwtAuthenticator({ ...base, ...(algorithms !== undefined ? { algorithms } : {}) });
      assert.equal(a.name, 'jwt');
      await a.close();
    }
  });
});
