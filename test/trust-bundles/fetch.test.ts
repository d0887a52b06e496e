import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../ca/index.js';
import { FetchError, getBounded, requestBounded, type FetchFailure } from '../../trust-bundles/fetch.js';
import { loadCluster } from '../../trust-bundles/sources.js';
import { runLanyard } from '../support/cli-inproc.js';
import { startHttp, trickle, type TestHttp } from '../support/http-server.js';
import { testPki, type TestPki } from '../support/pki.js';

const failsWith =
  (reason: FetchFailure) =>
  (err: unknown): boolean =>
    err instanceof FetchError && err.code === 'ERR_FETCH_FAILED' && err.reason === reason;

describe('the bounded GET every bundle fetch uses (certify --bundle-url, check, rotate)', () => {
  let a: TestHttp;
  let b: TestHttp;
  before(async () => {
    a = await startHttp();
    b = await startHttp();
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('returns the body of a 200 answer', async () => {
    a.route('/ok', (_req, res) => res.end('hello'));
    assert.equal(await getBounded(new URL(`${a.origin}/ok`), { timeoutMs: 2000 }), 'hello');
  });

  it('ends an answer that trickles in after the total deadline, however steadily bytes keep arriving', async () => {
    a.route('/slow', trickle);
    const started = performance.now();
    await assert.rejects(getBounded(new URL(`${a.origin}/slow`), { timeoutMs: 300 }), failsWith('timeout'));
    assert.ok(performance.now() - started < 2000, 'the deadline covers the body, not only idle time');
  });

  it('ends a server that accepts the connection and never answers', async () => {
    a.route('/silent', () => undefined);
    await assert.rejects(getBounded(new URL(`${a.origin}/silent`), { timeoutMs: 200 }), failsWith('timeout'));
  });

  it('refuses a body over the size limit, whether declared in Content-Length or streamed without one', async () => {
    a.route('/declared', (_req, res) => {
      res.writeHead(200, { 'content-length': String(2048) });
      res.end(Buffer.alloc(2048, 0x41));
    });
    a.route('/chunked', (_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 8; i++) res.write(Buffer.alloc(512, 0x41));
      res.end();
    });
    for (const path of ['/declared', '/chunked'])
      await assert.rejects(
        getBounded(new URL(`${a.origin}${path}`), { timeoutMs: 2000, maxBytes: 1024 }),
        failsWith('too-large'),
        path,
      );
    assert.equal(
      (await getBounded(new URL(`${a.origin}/declared`), { timeoutMs: 2000, maxBytes: 2048 })).length,
      2048,
      'exactly the limit is accepted',
    );
  });

  it('refuses a redirect to another origin (another port, host or scheme) without contacting it', async () => {
    b.route('/elsewhere', (_req, res) => res.end('rogue'));
    for (const location of [
      `${b.origin}/elsewhere`,
      `http://localhost:${new URL(b.origin).port}/elsewhere`,
      `https://127.0.0.1:${new URL(a.origin).port}/same-port-other-scheme`,
    ]) {
      a.route('/away', (_req, res) => res.writeHead(302, { location }).end());
      await assert.rejects(
        getBounded(new URL(`${a.origin}/away`), { timeoutMs: 2000 }),
        failsWith('redirect'),
        location,
      );
    }
    assert.equal(b.hits.get('/elsewhere') ?? 0, 0, 'the other origin was never asked');
  });

  it('follows a redirect within the same origin, at most maxRedirects of them', async () => {
    a.route('/moved', (_req, res) => res.writeHead(308, { location: '/here' }).end());
    a.route('/here', (_req, res) => res.end('here'));
    assert.equal(await getBounded(new URL(`${a.origin}/moved`), { timeoutMs: 2000 }), 'here');
    a.route('/loop', (_req, res) => res.writeHead(302, { location: '/loop' }).end());
    await assert.rejects(
      getBounded(new URL(`${a.origin}/loop`), { timeoutMs: 2000, maxRedirects: 2 }),
      failsWith('redirect'),
    );
    assert.equal(a.hits.get('/loop'), 3, 'the first request and two redirects');
  });

  it('fails with a status reason on an answer other than 200, and unreachable when nothing listens', async () => {
    await assert.rejects(
      getBounded(new URL(`${a.origin}/nothing`), { timeoutMs: 2000 }),
      failsWith('status'),
    );
    const gone = await startHttp();
    await gone.close();
    await assert.rejects(
      getBounded(new URL(`${gone.origin}/x`), { timeoutMs: 2000 }),
      failsWith('unreachable'),
    );
  });

  it('stops when its signal aborts', async () => {
    a.route('/slow2', trickle);
    const ac = new AbortController();
    const p = getBounded(new URL(`${a.origin}/slow2`), { timeoutMs: 10_000, signal: ac.signal });
    setTimeout(() => {
      ac.abort();
    }, 50);
    await assert.rejects(p, failsWith('cancelled'));
  });

  describe('requestBounded: the same bounds for the JWKS fetch and TokenReview', () => {
    it('POSTs a body with its length and a bearer token, and returns any status it is told to accept', async () => {
      let seen: { method?: string; length?: string; auth?: string; body: string } = { body: '' };
      a.route('/review', (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          seen = {
            ...(req.method !== undefined ? { method: req.method } : {}),
            ...(req.headers['content-length'] !== undefined ? { length: req.headers['content-length'] } : {}),
            ...(req.headers.authorization !== undefined ? { auth: req.headers.authorization } : {}),
            body: Buffer.concat(chunks).toString('utf8'),
          };
          res.writeHead(403, { 'x-answer': 'no' }).end('{"message":"forbidden"}');
        });
      });
      const res = await requestBounded(new URL(`${a.origin}/review`), {
        method: 'POST',
        body: '{"spec":{}}',
        bearerToken: 'caller-token',
        timeoutMs: 2000,
        acceptStatus: () => true,
      });
      assert.equal(res.status, 403);
      assert.equal(res.headers['x-answer'], 'no');
      assert.equal(res.body.toString('utf8'), '{"message":"forbidden"}');
      assert.deepEqual(seen, {
        method: 'POST',
        length: '11',
        auth: 'Bearer caller-token',
        body: '{"spec":{}}',
      });
    });

    it('fails with reason status on an answer other than 200 unless told to accept it', async () => {
      a.route('/error', (_req, res) => res.writeHead(500).end('oops'));
      await assert.rejects(
        requestBounded(new URL(`${a.origin}/error`), { timeoutMs: 2000 }),
        failsWith('status'),
      );
    });

    it('treats a redirect as an ordinary answer when maxRedirects is not given, and follows none', async () => {
      a.route('/moved-once', (_req, res) => res.writeHead(302, { location: '/here-too' }).end());
      a.route('/here-too', (_req, res) => res.end('here too'));
      const before = a.hits.get('/here-too') ?? 0;
      await assert.rejects(
        requestBounded(new URL(`${a.origin}/moved-once`), { timeoutMs: 2000 }),
        failsWith('status'),
      );
      const res = await requestBounded(new URL(`${a.origin}/moved-once`), {
        timeoutMs: 2000,
        acceptStatus: () => true,
      });
      assert.equal(res.status, 302);
      assert.equal(a.hits.get('/here-too') ?? 0, before, 'the redirect was not followed');
      const followed = await requestBounded(new URL(`${a.origin}/moved-once`), {
        timeoutMs: 2000,
        maxRedirects: 1,
      });
      assert.equal(followed.body.toString('utf8'), 'here too');
    });

    it('limits the body of every accepted status', async () => {
      a.route('/big-error', (_req, res) => {
        res.writeHead(500);
        res.end(Buffer.alloc(4096, 0x41));
      });
      await assert.rejects(
        requestBounded(new URL(`${a.origin}/big-error`), {
          timeoutMs: 2000,
          maxBytes: 1024,
          acceptStatus: () => true,
        }),
        failsWith('too-large'),
      );
    });

    it('is cancelled at once by a signal that has already aborted', async () => {
      a.route('/ok-cancel', (_req, res) => res.end('ok'));
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(
        requestBounded(new URL(`${a.origin}/ok-cancel`), { timeoutMs: 2000, signal: ac.signal }),
        failsWith('cancelled'),
      );
    });
  });
});

describe('lanyard check and rotate read ADMIN_URL clusters through the bounded GET', () => {
  let pki: TestPki;
  let a: TestHttp;
  let rogue: TestHttp;
  before(async () => {
    pki = await testPki({ now: systemClock.now() });
    a = await startHttp();
    rogue = await startHttp();
    const status = JSON.stringify({ issuer: { chainPem: pki.issuers.east?.certPem }, issuedByAnchor: [] });
    rogue.route('/v1/bundle', (_req, res) => res.end(pki.anchorsPem));
    rogue.route('/v1/status', (_req, res) => res.end(status));
  });
  after(async () => {
    await a.close();
    await rogue.close();
  });
  it('does not follow a redirect from the admin URL to another host', async () => {
    for (const p of ['/v1/bundle', '/v1/status'])
      a.route(p, (_req, res) => res.writeHead(302, { location: `${rogue.origin}${p}` }).end());
    await assert.rejects(loadCluster({ name: 'east', target: a.origin }), failsWith('redirect'));
    assert.equal(rogue.hits.size, 0, 'the other host was never asked');
    for (const cmd of [
      ['check', '--cluster', `east=${a.origin}`],
      ['rotate', 'status', '--cluster', `east=${a.origin}`],
    ]) {
      const r = await runLanyard(cmd);
      assert.equal(r.code, 1, cmd.join(' '));
      assert.match(r.err, /\(ERR_FETCH_FAILED\)$/, cmd.join(' '));
    }
    assert.equal(rogue.hits.size, 0, 'the other host was never asked');
  });

  it('refuses an oversized /v1/bundle and ends a trickling /v1/status within the deadline', async () => {
    a.route('/v1/bundle', (_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      for (let i = 0; i < 20; i++) res.write(chunk);
      res.end();
    });
    a.route('/v1/status', (_req, res) => res.end('{}'));
    await assert.rejects(loadCluster({ name: 'east', target: a.origin }), failsWith('too-large'));
    a.route('/v1/bundle', (_req, res) => res.end(pki.anchorsPem));
    a.route('/v1/status', trickle);
    const started = performance.now();
    await assert.rejects(
      loadCluster({ name: 'east', target: a.origin }, { timeoutMs: 300 }),
      failsWith('timeout'),
    );
    assert.ok(performance.now() - started < 2000);
  });

  it('reads servingTls.chainPem defensively: a chain, null for plaintext, unknown when absent or of another type', async () => {
    const chainPem = pki.issuers.east?.certPem ?? '';
    const serve = (servingTls: unknown): void => {
      a.route('/v1/bundle', (_req, res) => res.end(pki.anchorsPem));
      a.route('/v1/status', (_req, res) =>
        res.end(JSON.stringify({ issuer: { chainPem }, issuedByAnchor: [], servingTls })),
      );
    };
    serve({ serverName: 'x', chainPem });
    const tls = await loadCluster({ name: 'east', target: a.origin });
    assert.equal(tls.servingChain?.length, 1);
    serve(null);
    assert.equal((await loadCluster({ name: 'east', target: a.origin })).servingChain, null);
    for (const odd of [undefined, 'tls', { chainPem: 42 }, { serverName: 'x' }]) {
      serve(odd);
      assert.equal((await loadCluster({ name: 'east', target: a.origin })).servingChain, undefined);
    }
  });
});
