import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DEFAULT_TOKEN_REVIEW_CACHE_MS,
  TOKEN_REVIEW_PATH,
  createTokenReviewAuthenticator,
  type TokenReviewAuthenticator,
  type TokenReviewAuthenticatorOptions,
} from '../../../issuer/authn/index.js';
import { inClusterConfig, loadKubeConfig, type KubeConnection } from '../../../trust-bundles/index.js';
import { createSigningKeyDir, mintServiceAccountToken } from '../../../bin/token/index.js';
import type { IssuerConfig } from '../../../issuer/config.js';
import { parseServe } from '../../deploy/support.js';
import { FakeClock } from '../../support/clock.js';
import { closedPort } from '../../support/jwks-server.js';
import { testCert } from '../../support/tls-cert.js';
import { waitFor } from '../../support/wait.js';
import {
  jwtShapedToken,
  startTokenReviewStandIn,
  type TokenReviewStandIn,
} from '../../support/token-review-stand-in.js';
import { assertRejects, authenticatorContract, bytes, signal } from './contract.js';
import { defer } from '../../support/cleanup.js';
import { testDir } from '../../support/temp-dir.js';

const sa = (ns: string, name: string): string => `system:serviceaccount:${ns}:${name}`;
/** when every FakeClock here starts */
const START = new FakeClock().now();
/**
 * A projected-token-shaped JWT for the audience identity.l5d.io, valid for an hour from START, that
 * the stand-in knows only once it is added (addToken).
 */
const newToken = (): string =>
  jwtShapedToken(sa('ns', `sa-${randomBytes(6).toString('hex')}`), { now: START });

function connectionTo(standIn: TokenReviewStandIn): KubeConnection {
  return { server: standIn.url, caPem: standIn.caPem, token: standIn.callerToken };
}

authenticatorContract('token-review (TokenReview API stand-in)', async () => {
  const standIn = await startTokenReviewStandIn();
  const authenticator = createTokenReviewAuthenticator({
    connection: connectionTo(standIn),
    clock: new FakeClock(),
  });
  return {
    authenticator,
    validToken: (a) => {
      const t = newToken();
      standIn.addToken(t, sa(a.namespace, a.name));
      return Promise.resolve(t);
    },
    cleanup: async () => {
      await authenticator.close();
      await standIn.close();
    },
  };
});

describe('TokenReview authenticator against the TokenReview API stand-in', () => {
  let standIn: TokenReviewStandIn;
  let clock: FakeClock;
  const open: TokenReviewAuthenticator[] = [];
  before(async () => {
    standIn = await startTokenReviewStandIn();
    clock = new FakeClock();
  });
  after(async () => {
    for (const a of open) await a.close();
    await standIn.close();
  });
  function auth(extra: Partial<TokenReviewAuthenticatorOptions> = {}): TokenReviewAuthenticator {
    const a = createTokenReviewAuthenticator({ connection: connectionTo(standIn), clock, ...extra });
    open.push(a);
    return a;
  }

  it('posts an authentication.k8s.io/v1 TokenReview bound to the audience, with its own bearer token', async () => {
    standIn.override(undefined);
    const t = newToken();
    standIn.addToken(t, sa('emojivoto', 'web'));
    const a = await auth().authenticate(bytes(t), { signal: signal() });
    assert.deepEqual({ ...a }, { namespace: 'emojivoto', name: 'web' });
    assert.deepEqual(standIn.lastReview, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: t, audiences: ['identity.l5d.io'] },
    });
    assert.equal(standIn.lastAuthorization, `Bearer ${standIn.callerToken}`);
  });

  it('rejects a token the API server does not authenticate (ERR_TOKEN_INVALID)', async () => {
    standIn.override(undefined);
    const t = newToken();
    await assertRejects(
      auth().authenticate(bytes(t), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      t,
      'not-authenticated',
    );
  });

  it('rejects a token bound to another audience (ERR_TOKEN_INVALID)', async () => {
    standIn.override(undefined);
    const t = newToken();
    standIn.addToken(t, sa('emojivoto', 'web'), ['https://kubernetes.default.svc.cluster.local']);
    await assertRejects(auth().authenticate(bytes(t), { signal: signal() }), 'ERR_TOKEN_INVALID', t);
    // an answer that authenticates but lists other audiences is refused too
    standIn.override({
      status: 201,
      body: JSON.stringify({
        kind: 'TokenReview',
        status: { authenticated: true, user: { username: sa('a', 'b') }, audiences: ['other'] },
      }),
    });
    await assertRejects(
      auth().authenticate(bytes(t), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      t,
      'audience',
    );
    standIn.override(undefined);
  });

  it('rejects an authenticated answer that does not list the audience: without status.audiences the token is valid for the API server only', async (ctx) => {
    // an API server without API audiences authenticates a legacy token (no aud) for any audience
    // asked for and leaves status.audiences out
    const noApiAudiences = await startTokenReviewStandIn({ clock, apiAudiences: [] });
    // an API server from before TokenReview audiences ignores spec.audiences altogether
    const unaware = await startTokenReviewStandIn({ clock, audienceAware: false });
    defer(ctx, () => unaware.close());
    defer(ctx, () => noApiAudiences.close());
    defer(ctx, () => {
      standIn.override(undefined);
    });
    const legacy = jwtShapedToken(sa('emojivoto', 'web'), { now: clock.now(), audiences: [] });
    noApiAudiences.addToken(legacy, sa('emojivoto', 'web'), []);
    await assertRejects(
      auth({ connection: connectionTo(noApiAudiences) }).authenticate(bytes(legacy), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      legacy,
      'audience',
    );
    const t = newToken();
    unaware.addToken(t, sa('emojivoto', 'web'));
    await assertRejects(
      auth({ connection: connectionTo(unaware) }).authenticate(bytes(t), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      t,
      'audience',
    );
    assert.equal(unaware.requests, 1);
    // the same answer written out by hand
    standIn.override({
      status: 201,
      body: JSON.stringify({
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        status: { authenticated: true, user: { username: sa('emojivoto', 'web') } },
      }),
    });
    await assertRejects(
      auth().authenticate(bytes(t), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      t,
      'audience',
    );
  });

  it('rejects a token that authenticates a user who is not a service account (ERR_TOKEN_INVALID)', async () => {
    standIn.override(undefined);
    for (const username of [
      'alice',
      'system:node:worker-1',
      sa('Bad_NS', 'web'),
      'system:serviceaccount:a:b:c',
    ]) {
      const t = newToken();
      standIn.addToken(t, username);
      await assertRejects(auth().authenticate(bytes(t), { signal: signal() }), 'ERR_TOKEN_INVALID', t);
    }
  });

  it('is unavailable when the API server answers 500, 429, 401 or 403', async () => {
    for (const status of [500, 429, 401, 403]) {
      standIn.override({
        status,
        body: JSON.stringify({ kind: 'Status', status: 'Failure', code: status, message: 'nope' }),
      });
      const t = newToken();
      await assertRejects(
        auth().authenticate(bytes(t), { signal: signal() }),
        'ERR_AUTHENTICATOR_UNAVAILABLE',
        t,
      );
    }
    standIn.override(undefined);
  });

  it('explains a rejection of its own credentials (401) and a missing RBAC grant (403)', async () => {
    standIn.override(undefined);
    const t = newToken();
    const wrong = auth({ connection: { ...connectionTo(standIn), token: 'wrong-caller-token' } });
    await assertRejects(
      wrong.authenticate(bytes(t), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      t,
      'refused',
    );
    standIn.override({ status: 403, body: '{}' });
    await assertRejects(
      auth().authenticate(bytes(t), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      t,
      'refused',
    );
    standIn.override(undefined);
  });

  it('is unavailable when the answer is not JSON or not a TokenReview', async () => {
    for (const body of [
      '<html>',
      '[]',
      '{"kind":"Status"}',
      '{"kind":"TokenReview"}',
      '{"kind":"TokenReview","status":{"authenticated":true}}',
    ]) {
      standIn.override({ status: 201, body });
      const t = newToken();
      await assertRejects(
        auth().authenticate(bytes(t), { signal: signal() }),
        'ERR_AUTHENTICATOR_UNAVAILABLE',
        t,
      );
    }
    standIn.override(undefined);
  });

  it('is unavailable when the API server cannot be reached', async () => {
    const port = await closedPort();
    const a = auth({ connection: { ...connectionTo(standIn), server: `https://127.0.0.1:${port}` } });
    const t = newToken();
    await assertRejects(a.authenticate(bytes(t), { signal: signal() }), 'ERR_AUTHENTICATOR_UNAVAILABLE', t);
  });

  it('is unavailable when the API server certificate is not trusted', async () => {
    standIn.override(undefined);
    const t = newToken();
    standIn.addToken(t, sa('a', 'b'));
    const untrusted: KubeConnection = { server: standIn.url, token: standIn.callerToken };
    await assertRejects(
      auth({ connection: untrusted }).authenticate(bytes(t), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      t,
    );
  });

  it('times out a request the API server holds, and stops when the caller aborts', async (ctx) => {
    standIn.override(undefined);
    const t = newToken();
    standIn.addToken(t, sa('a', 'b'));
    standIn.hold();
    defer(ctx, () => {
      standIn.release();
    });
    await assertRejects(
      auth({ timeoutMs: 100 }).authenticate(bytes(t), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      t,
      'timeout',
    );
    const ac = new AbortController();
    const p = auth().authenticate(bytes(t), { signal: ac.signal });
    setTimeout(() => {
      ac.abort();
    }, 20);
    await assertRejects(p, 'ERR_AUTHENTICATOR_UNAVAILABLE', t, 'cancelled');
  });

  it('keeps at most maxConcurrent requests in flight, queueing the others', async (ctx) => {
    standIn.override(undefined);
    const standIn2 = await startTokenReviewStandIn();
    const a = createTokenReviewAuthenticator({ connection: connectionTo(standIn2), clock, maxConcurrent: 3 });
    defer(ctx, () => standIn2.close());
    defer(ctx, () => a.close());
    const tokens = Array.from({ length: 10 }, (_, i) => {
      const t = newToken();
      standIn2.addToken(t, sa('load', `sa-${i}`));
      return t;
    });
    standIn2.hold();
    const calls = tokens.map((t) => a.authenticate(bytes(t), { signal: signal() }));
    await waitFor(() => standIn2.inFlight === 3, 'three requests in flight');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(standIn2.inFlight, 3);
    assert.equal(a.stats().queued, 7);
    standIn2.release();
    const got = await Promise.all(calls);
    assert.deepEqual(
      got.map((g) => g.name),
      tokens.map((_, i) => `sa-${i}`),
    );
    assert.equal(standIn2.maxInFlight, 3);
    assert.equal(a.stats().inFlight, 0);
  });

  it('refuses callers beyond maxQueue at once (ERR_AUTHENTICATOR_UNAVAILABLE), and lets aborted waiters leave the queue', async (ctx) => {
    standIn.override(undefined);
    const a = auth({ maxConcurrent: 1, maxQueue: 2 });
    const tokens = Array.from({ length: 4 }, () => {
      const t = newToken();
      standIn.addToken(t, sa('q', 'sa'));
      return t;
    });
    standIn.hold();
    defer(ctx, () => {
      standIn.release();
    });
    const first = a.authenticate(bytes(tokens[0] as string), { signal: signal() });
    await waitFor(() => a.stats().inFlight === 1, 'one in flight');
    const ac = new AbortController();
    const queued = [
      a.authenticate(bytes(tokens[1] as string), { signal: ac.signal }),
      a.authenticate(bytes(tokens[2] as string), { signal: signal() }),
    ];
    assert.equal(a.stats().queued, 2);
    await assertRejects(
      a.authenticate(bytes(tokens[3] as string), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      tokens[3] as string,
      'overloaded',
    );
    ac.abort();
    await assertRejects(queued[0] as Promise<unknown>, 'ERR_AUTHENTICATOR_UNAVAILABLE', tokens[1] as string);
    assert.equal(a.stats().queued, 1);
    standIn.release();
    assert.equal((await first).namespace, 'q');
    assert.equal((await queued[1])?.namespace, 'q');
  });

  it('serves a repeated token from the cache until the TTL passes', async () => {
    standIn.override(undefined);
    const a = auth({ cacheTtlMs: 60_000 });
    const t = newToken();
    standIn.addToken(t, sa('cache', 'sa'));
    await a.authenticate(bytes(t), { signal: signal() });
    const sent = standIn.requests;
    await a.authenticate(bytes(t), { signal: signal() });
    assert.equal(standIn.requests, sent);
    assert.equal(a.stats().cacheHits, 1);
    clock.advance(60_000);
    await a.authenticate(bytes(t), { signal: signal() });
    assert.equal(standIn.requests, sent + 1);
  });

  it("refuses a deleted pod's token once the default cache time (5 s) has passed", async () => {
    standIn.override(undefined);
    const a = auth();
    const t = newToken();
    standIn.addToken(t, sa('gone', 'web'));
    await a.authenticate(bytes(t), { signal: signal() });
    standIn.deletePod(t);
    clock.advance(4_999);
    assert.equal((await a.authenticate(bytes(t), { signal: signal() })).namespace, 'gone');
    clock.advance(1);
    await assertRejects(
      a.authenticate(bytes(t), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      t,
      'not-authenticated',
    );
  });

  it('asks the API server on every call with cacheTtlMs 0, so a deleted pod is refused at once', async () => {
    standIn.override(undefined);
    const a = auth({ cacheTtlMs: 0 });
    const t = newToken();
    standIn.addToken(t, sa('nocache', 'web'));
    const sent = standIn.requests;
    await a.authenticate(bytes(t), { signal: signal() });
    await a.authenticate(bytes(t), { signal: signal() });
    assert.equal(standIn.requests, sent + 2);
    assert.equal(a.stats().cacheHits, 0);
    standIn.deletePod(t);
    await assertRejects(
      a.authenticate(bytes(t), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      t,
      'not-authenticated',
    );
    assert.throws(() => auth({ cacheTtlMs: -1 }), { code: 'ERR_USAGE' });
  });

  it('never keeps a cached review past the exp of a JWT token', async (ctx) => {
    standIn.override(undefined);
    const dir = testDir(ctx);
    const k = await createSigningKeyDir(dir, { clock });
    const jwt = await mintServiceAccountToken({
      key: k.key,
      kid: k.kid,
      namespace: 'jwt',
      serviceAccount: 'sa',
      ttlMs: 10_000,
      now: clock.now(),
    });
    standIn.addToken(jwt, sa('jwt', 'sa'));
    const a = auth({ cacheTtlMs: 60_000 });
    await a.authenticate(bytes(jwt), { signal: signal() });
    const sent = standIn.requests;
    clock.advance(9_000);
    await a.authenticate(bytes(jwt), { signal: signal() });
    assert.equal(standIn.requests, sent);
    clock.advance(1_000);
    await a.authenticate(bytes(jwt), { signal: signal() });
    assert.equal(standIn.requests, sent + 1);
  });

  it('posts to the TokenReview path below a server URL with a path prefix', () => {
    assert.equal(TOKEN_REVIEW_PATH, '/apis/authentication.k8s.io/v1/tokenreviews');
    assert.throws(
      () =>
        createTokenReviewAuthenticator({ connection: { server: 'http://127.0.0.1:1', token: 'x' }, clock }),
      {
        code: 'ERR_USAGE',
      },
    );
    assert.throws(
      () => createTokenReviewAuthenticator({ connection: { server: 'https://127.0.0.1:1' }, clock }),
      {
        code: 'ERR_USAGE',
      },
    );
  });
});

describe('lanyard serve --token-review-cache', () => {
  const serveWith = (args: string[], env: Record<string, string> = {}): IssuerConfig =>
    parseServe({
      name: 'lanyard',
      args: ['serve', '--issuer-dir', '/issuer', '--auth', 'token-review', ...args],
      env: Object.entries(env).map(([name, value]) => ({ name, value })),
    }).config;
  const cacheOf = (c: IssuerConfig): number | undefined =>
    c.auth.kind === 'token-review' ? c.auth.cacheTtlMs : undefined;

  it('reuses a successful review for 5 s by default, as long as the flag or LANYARD_TOKEN_REVIEW_CACHE says, and not at all with 0', () => {
    assert.equal(cacheOf(serveWith([])), 5_000);
    assert.equal(cacheOf(serveWith([])), DEFAULT_TOKEN_REVIEW_CACHE_MS);
    assert.equal(cacheOf(serveWith(['--token-review-cache', '30s'])), 30_000);
    assert.equal(cacheOf(serveWith(['--token-review-cache', '0'])), 0);
    assert.equal(cacheOf(serveWith([], { LANYARD_TOKEN_REVIEW_CACHE: '0s' })), 0);
    assert.equal(cacheOf(serveWith([], { LANYARD_TOKEN_REVIEW_CACHE: '1m' })), 60_000);
  });

  it('refuses a value that is not a duration, or longer than 10 minutes (ERR_USAGE)', () => {
    for (const v of ['soon', '-5s', '11m', '1h']) {
      assert.throws(() => serveWith(['--token-review-cache', v]), { code: 'ERR_USAGE' }, v);
    }
  });
});

describe('API server connection: in-cluster and kubeconfig', () => {
  let standIn: TokenReviewStandIn;
  let mtlsStandIn: TokenReviewStandIn;
  const client = testCert('client', 'lanyard-issuer');
  const clock = new FakeClock();
  before(async () => {
    standIn = await startTokenReviewStandIn();
    mtlsStandIn = await startTokenReviewStandIn({ callerToken: 'not-used', clientCaPem: client.certPem });
  });
  after(async () => {
    await standIn.close();
    await mtlsStandIn.close();
  });

  async function works(
    connection: KubeConnection,
    target: TokenReviewStandIn,
    extra: Partial<TokenReviewAuthenticatorOptions> = {},
  ): Promise<TokenReviewAuthenticator> {
    const a = createTokenReviewAuthenticator({ connection, clock, ...extra });
    const t = newToken();
    target.addToken(t, sa('conn', 'ok'));
    assert.deepEqual(
      { ...(await a.authenticate(bytes(t), { signal: signal() })) },
      { namespace: 'conn', name: 'ok' },
    );
    return a;
  }

  it('builds the in-cluster connection from the service-account directory and the environment', async (ctx) => {
    const dir = testDir(ctx);
    writeFileSync(join(dir, 'ca.crt'), standIn.caPem);
    writeFileSync(join(dir, 'token'), `${standIn.callerToken}\n`);
    const port = new URL(standIn.url).port;
    const conn = await inClusterConfig(dir, {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: port,
    });
    assert.deepEqual(conn, {
      server: `https://127.0.0.1:${port}`,
      caPem: standIn.caPem,
      tokenFile: join(dir, 'token'),
    });
    const v6 = await inClusterConfig(dir, {
      KUBERNETES_SERVICE_HOST: 'fd00::1',
      KUBERNETES_SERVICE_PORT: '443',
    });
    assert.equal(v6.server, 'https://[fd00::1]:443');
    await assert.rejects(inClusterConfig(dir, {}), { code: 'ERR_USAGE' });
    await assert.rejects(
      inClusterConfig(join(dir, 'missing'), { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }),
      {
        code: 'ERR_FILE_NOT_FOUND',
      },
    );
    const a = await works(conn, standIn, { tokenFileRefreshMs: 60_000 });
    // the kubelet rotates the projected token; the new one is used after the refresh interval
    writeFileSync(join(dir, 'token'), 'rotated-token');
    const t = newToken();
    standIn.addToken(t, sa('conn', 'ok'));
    await a.authenticate(bytes(t), { signal: signal() });
    assert.equal(standIn.lastAuthorization, `Bearer ${standIn.callerToken}`);
    clock.advance(60_000);
    const t2 = newToken();
    standIn.addToken(t2, sa('conn', 'ok'));
    await assertRejects(
      a.authenticate(bytes(t2), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      t2,
      'refused',
    );
    assert.equal(standIn.lastAuthorization, 'Bearer rotated-token');
    await a.close();
  });

  it('loads a kubeconfig with inline CA data and a bearer token (current-context)', async (ctx) => {
    const dir = testDir(ctx);
    const path = join(dir, 'kubeconfig');
    writeFileSync(
      path,
      `apiVersion: v1
kind: Config
current-context: stand-in
clusters:
  - name: other
    cluster: { server: "https://10.0.0.1:6443" }
  - name: stand-in-cluster
    cluster:
      server: ${standIn.url}/
      certificate-authority-data: ${Buffer.from(standIn.caPem).toString('base64')}
contexts:
  - name: stand-in
    context: { cluster: stand-in-cluster, user: issuer }
users:
  - name: issuer
    user:
      token: ${standIn.callerToken}
`,
    );
    const conn = await loadKubeConfig(path);
    assert.equal(conn.server, standIn.url);
    assert.equal(conn.token, standIn.callerToken);
    await (await works(conn, standIn)).close();
  });

  it('loads a kubeconfig with CA and client certificate files relative to it (mTLS to the API server)', async (ctx) => {
    const dir = testDir(ctx);
    mkdirSync(join(dir, 'pki'));
    writeFileSync(join(dir, 'pki', 'ca.crt'), mtlsStandIn.caPem);
    writeFileSync(join(dir, 'pki', 'client.crt'), client.certPem);
    writeFileSync(join(dir, 'pki', 'client.key'), client.keyPem);
    const path = join(dir, 'config.yaml');
    writeFileSync(
      path,
      `apiVersion: v1
kind: Config
current-context: other
clusters:
  - name: c
    cluster: { server: "${mtlsStandIn.url}", certificate-authority: pki/ca.crt }
contexts:
  - name: other
    context: { cluster: nowhere, user: u }
  - name: mtls
    context: { cluster: c, user: u }
users:
  - name: u
    user: { client-certificate: pki/client.crt, client-key: pki/client.key }
`,
    );
    await assert.rejects(loadKubeConfig(path), { code: 'ERR_FILE_INVALID' });
    const conn = await loadKubeConfig(path, { context: 'mtls' });
    assert.equal(conn.token, undefined);
    await (await works(conn, mtlsStandIn)).close();
    // the same with inline -data fields
    const inline = join(dir, 'inline.yaml');
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    writeFileSync(
      inline,
      `current-context: mtls
clusters: [{ name: c, cluster: { server: "${mtlsStandIn.url}", certificate-authority-data: ${b64(mtlsStandIn.caPem)} } }]
contexts: [{ name: mtls, context: { cluster: c, user: u } }]
users: [{ name: u, user: { client-certificate-data: ${b64(client.certPem)}, client-key-data: ${b64(client.keyPem)} } }]
`,
    );
    await (await works(await loadKubeConfig(inline), mtlsStandIn)).close();
  });

  it('refuses kubeconfigs it cannot use safely or fully', async (ctx) => {
    const dir = testDir(ctx);
    const write = (name: string, cluster: string, user: string): string => {
      const p = join(dir, name);
      writeFileSync(
        p,
        `current-context: x
clusters: [{ name: c, cluster: ${cluster} }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
users: [{ name: u, user: ${user} }]
`,
      );
      return p;
    };
    const ok = '{ server: "https://127.0.0.1:6443" }';
    for (const [name, cluster, user] of [
      ['exec', ok, '{ exec: { command: aws, apiVersion: client.authentication.k8s.io/v1 } }'],
      ['auth-provider', ok, '{ auth-provider: { name: oidc } }'],
      ['basic', ok, '{ username: admin, password: secret }'],
      ['insecure', '{ server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true }', '{ token: t }'],
      ['http', '{ server: "http://127.0.0.1:8080" }', '{ token: t }'],
      ['no-server', '{ }', '{ token: t }'],
      ['no-credentials', ok, '{ }'],
      ['half-cert', ok, '{ client-certificate-data: aGVsbG8= }'],
    ] as const) {
      await assert.rejects(loadKubeConfig(write(name, cluster, user)), { code: 'ERR_FILE_INVALID' }, name);
    }
    writeFileSync(join(dir, 'not-yaml'), 'clusters: [unclosed');
    await assert.rejects(loadKubeConfig(join(dir, 'not-yaml')), { code: 'ERR_FILE_INVALID' });
    await assert.rejects(loadKubeConfig(join(dir, 'missing')), { code: 'ERR_FILE_NOT_FOUND' });
    await assert.rejects(
      loadKubeConfig(
        write('missing-ca', '{ server: "https://h:1", certificate-authority: nope.crt }', '{ token: t }'),
      ),
      {
        code: 'ERR_FILE_NOT_FOUND',
      },
    );
  });
});
