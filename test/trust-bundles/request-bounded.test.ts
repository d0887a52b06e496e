import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FetchError, requestBounded, type FetchFailure } from '../../trust-bundles/fetch.js';
import { startHttp, type TestHttp } from '../support/http-server.js';

const failsWith =
  (reason: FetchFailure) =>
  (err: unknown): boolean =>
    err instanceof FetchError && err.code === 'ERR_FETCH_FAILED' && err.reason === reason;

describe('requestBounded: the one bounded HTTP request (bundles, JWKS, TokenReview)', () => {
  let a: TestHttp;
  before(async () => {
    a = await startHttp();
  });
  after(async () => {
    await a.close();
  });

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
    a.route('/moved', (_req, res) => res.writeHead(302, { location: '/here' }).end());
    a.route('/here', (_req, res) => res.end('here'));
    const before = a.hits.get('/here') ?? 0;
    await assert.rejects(
      requestBounded(new URL(`${a.origin}/moved`), { timeoutMs: 2000 }),
      failsWith('status'),
    );
    const res = await requestBounded(new URL(`${a.origin}/moved`), {
      timeoutMs: 2000,
      acceptStatus: () => true,
    });
    assert.equal(res.status, 302);
    assert.equal(a.hits.get('/here') ?? 0, before, 'the redirect was not followed');
    const followed = await requestBounded(new URL(`${a.origin}/moved`), { timeoutMs: 2000, maxRedirects: 1 });
    assert.equal(followed.body.toString('utf8'), 'here');
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
    a.route('/ok', (_req, res) => res.end('ok'));
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(
      requestBounded(new URL(`${a.origin}/ok`), { timeoutMs: 2000, signal: ac.signal }),
      failsWith('cancelled'),
    );
  });
});
