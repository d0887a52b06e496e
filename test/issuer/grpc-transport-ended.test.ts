import assert from 'node:assert/strict';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import { systemClock } from '../../ca/index.js';
import type { TestPki } from '../support/pki.js';
import { CERTIFY_METHOD } from '../../issuer/grpc/server.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { startTestIssuer, grpcCodeOf, type TestIssuer } from '../support/issuer.js';
import { makeCsr, testPki } from '../support/pki.js';
import { waitFor } from '../support/wait.js';
import * as grpc from '@grpc/grpc-js';
import { defer } from '../support/cleanup.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const TOKEN = Buffer.from('sa:default:web');
const MAX_IN_FLIGHT = 2;

/** One gRPC message frame: uncompressed flag, 4-byte big-endian length, the bytes. */
function frame(message: Buffer, declaredLength = message.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([head, message]);
}

/**
 * A Certify call spoken as raw HTTP/2 (what a misbehaving or hostile client can send): `body` as
 * the request data (nothing when undefined), `grpcTimeout` as the grpc-timeout header, and the
 * request left open when `end` is false. Resolves with the grpc-status name the server sent, or
 * 'NO_STATUS' when the stream closed without one. `onOpen` gets a function that resets the stream.
 */
function rawCall(
  session: ClientHttp2Session,
  o: { body?: Buffer; grpcTimeout?: string; end?: boolean; onOpen?: (cancel: () => void) => void },
): Promise<string> {
  const req = session.request({
    ':method': 'POST',
    ':path': CERTIFY_METHOD,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...(o.grpcTimeout !== undefined ? { 'grpc-timeout': o.grpcTimeout } : {}),
  });
  req.on('data', () => undefined);
  req.on('error', () => undefined);
  if (o.body !== undefined) req.write(o.body);
  if (o.end !== false) req.end();
  o.onOpen?.(() => {
    req.close(constants.NGHTTP2_CANCEL);
  });
  return new Promise((resolve) => {
    let status: string | undefined;
    const done = (): void => {
      clearTimeout(timer);
      resolve(status ?? 'NO_STATUS');
      // a request left open (end: false) is finished from this side too
      if (!req.closed) req.close(constants.NGHTTP2_CANCEL);
    };
    const timer = setTimeout(() => {
      status = 'NO_ANSWER_IN_5S';
      done();
    }, 5000);
    const take = (h: Record<string, unknown>): void => {
      const s = Number(h['grpc-status']);
      if (status === undefined && Number.isInteger(s)) {
        status = grpc.status[s] ?? `status ${s}`;
        done();
      }
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('close', done);
  });
}

describe('Certify calls the transport ends before the handler answers', () => {
  let t: TestIssuer;
  let session: ClientHttp2Session;
  let csr: Buffer;

  async function inFlight(): Promise<number> {
    const m = await t.issuer.metrics.inFlight.get();
    return m.values.find((v) => v.labels.api === 'Certify')?.value ?? 0;
  }
  async function awaitingRequest(): Promise<number> {
    const m = await t.issuer.metrics.awaitingRequest.get();
    return m.values.find((v) => v.labels.api === 'Certify')?.value ?? 0;
  }
  async function requestsTotal(result: string): Promise<number> {
    const m = await t.issuer.metrics.requests.get();
    return m.values.find((v) => v.labels.api === 'Certify' && v.labels.result === result)?.value ?? 0;
  }
  function certifyLines(from: number): Record<string, unknown>[] {
    return t.logLines
      .slice(from)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.rpc === 'Certify');
  }
  /** After the calls of a test: the slots are free again and a valid call is served. */
  async function assertSlotsReleased(): Promise<void> {
    await waitFor(async () => (await inFlight()) === 0, 'lanyard_requests_in_flight returned to 0');
    for (let i = 0; i < MAX_IN_FLIGHT + 1; i++) {
      assert.equal(
        await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr })),
        'OK',
      );
    }
    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    assert.match(metrics, /lanyard_requests_in_flight\{api="Certify"\} 0\b/);
  }
  /** Each of `calls` ended with `code`, with one log line and one requests_total sample apiece. */
  async function assertAccounted(from: number, before: number, code: string, calls: number): Promise<void> {
    await waitFor(() => certifyLines(from).length >= calls, `${calls} log lines`);
    await new Promise((r) => setTimeout(r, 50));
    const lines = certifyLines(from);
    assert.equal(lines.length, calls, 'one log line per call');
    for (const l of lines) {
      assert.equal(l.grpcCode, code);
      assert.equal(typeof l.reqId, 'string');
      assert.equal(typeof l.code, 'string');
    }
    assert.equal((await requestsTotal(code)) - before, calls, 'one requests_total sample per call');
    for (const l of t.logLines) assert.ok(!l.includes('sa:default:web'), 'a token leaked into the log');
  }

  let pki: TestPki;
  before(async () => {
    pki = await testPki({ now: systemClock.now() });
    csr = (await makeCsr({ dns: [ID] })).der;
  });
  beforeEach(async () => {
    t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator(), maxInFlight: MAX_IN_FLIGHT });
    session = connect(`http://${t.target}`);
  });
  afterEach(async () => {
    session.close();
    await t.close();
  });

  it('frees the slot of a message larger than 64 KiB (RESOURCE_EXHAUSTED), and logs and counts it once', async () => {
    const from = t.logLines.length;
    const before = await requestsTotal('RESOURCE_EXHAUSTED');
    for (let i = 0; i < MAX_IN_FLIGHT + 1; i++) {
      const body = frame(Buffer.alloc(70 * 1024, 0x61));
      assert.equal(await rawCall(session, { body }), 'RESOURCE_EXHAUSTED');
    }
    await assertAccounted(from, before, 'RESOURCE_EXHAUSTED', MAX_IN_FLIGHT + 1);
    await assertSlotsReleased();
  });

  it('answers INVALID_ARGUMENT to a body that is not a CertifyRequest, frees its slot, and logs and counts it once', async () => {
    const from = t.logLines.length;
    const before = await requestsTotal('INVALID_ARGUMENT');
    // field 1 with wire type 7 (none exists); then a length prefix running past the end
    for (const garbage of [Buffer.from([0x0f]), Buffer.from([0x0a, 0x10, 0x01]), Buffer.from([0x12, 0xff])]) {
      assert.equal(await rawCall(session, { body: frame(garbage) }), 'INVALID_ARGUMENT');
    }
    await assertAccounted(from, before, 'INVALID_ARGUMENT', 3);
    await assertSlotsReleased();
  });

  it('frees the slot of a call whose deadline passes before its message arrives, and logs and counts it once', async () => {
    const from = t.logLines.length;
    const before = await requestsTotal('DEADLINE_EXCEEDED');
    for (let i = 0; i < MAX_IN_FLIGHT + 1; i++) {
      assert.equal(await rawCall(session, { grpcTimeout: '100m', end: false }), 'DEADLINE_EXCEEDED');
    }
    await assertAccounted(from, before, 'DEADLINE_EXCEEDED', MAX_IN_FLIGHT + 1);
    await assertSlotsReleased();
  });

  for (const how of ['resets the stream', 'closes the connection'] as const) {
    it(`frees the slot of a call whose client ${how} before sending its message, and logs and counts it once`, async () => {
      const from = t.logLines.length;
      for (let i = 0; i < MAX_IN_FLIGHT + 1; i++) {
        const own = how === 'closes the connection' ? connect(`http://${t.target}`) : session;
        let reset: () => void = () => undefined;
        const ended = rawCall(own, { end: false, onOpen: (c) => (reset = c) });
        await waitFor(async () => (await awaitingRequest()) === 1, 'the call is waiting for its request');
        if (own === session) reset();
        else own.destroy();
        assert.equal(await ended, 'NO_STATUS');
        await waitFor(async () => (await awaitingRequest()) === 0, 'the call was let go');
      }
      // grpc-js reads the end of the stream as a half-close without a message: its result code
      // is UNIMPLEMENTED (nothing reaches the client); what matters is one line and one sample
      await waitFor(() => certifyLines(from).length >= MAX_IN_FLIGHT + 1, 'log lines');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(certifyLines(from).length, MAX_IN_FLIGHT + 1, 'one log line per call');
      const counted = (await t.issuer.metrics.requests.get()).values.reduce((n, v) => n + v.value, 0);
      assert.equal(counted, MAX_IN_FLIGHT + 1, 'one requests_total sample per call');
      await assertSlotsReleased();
    });
  }

  it('frees the slots of calls whose deadline passes while the handler waits, with one log line and sample each', async (ctx) => {
    const authn = scriptedAuthenticator();
    const h = await startTestIssuer({ pki, authenticator: authn, maxInFlight: MAX_IN_FLIGHT });
    defer(ctx, () => h.close());
    authn.hold();
    const from = h.logLines.length;
    const codes = await Promise.all(
      Array.from({ length: MAX_IN_FLIGHT }, () =>
        grpcCodeOf(
          h.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr }, { deadlineMs: 200 }),
        ),
      ),
    );
    assert.deepEqual(codes, Array<string>(MAX_IN_FLIGHT).fill('DEADLINE_EXCEEDED'));
    authn.release();
    await waitFor(
      () => h.logLines.slice(from).filter((l) => l.includes('"rpc":"Certify"')).length >= 2,
      'lines',
    );
    await new Promise((r) => setTimeout(r, 50));
    const lines = h.logLines.slice(from).filter((l) => l.includes('"rpc":"Certify"'));
    assert.equal(lines.length, MAX_IN_FLIGHT, 'one log line per call');
    const m = (await h.issuer.metrics.inFlight.get()).values[0]?.value;
    assert.equal(m, 0);
    assert.equal(
      await grpcCodeOf(h.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr })),
      'OK',
    );
  });
});
