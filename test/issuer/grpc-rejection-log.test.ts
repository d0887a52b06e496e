// Rejected calls are logged at a bounded rate, counted exactly (issue 11, smaller items).
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createRejectionLog, REJECTION_LOG_DEFAULTS } from '../../issuer/grpc/rejection-log.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock } from '../support/clock.js';
import { grpcCodeOf, startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { makeCsr, testPki } from '../support/pki.js';
import { waitFor } from '../support/wait.js';
import { defer } from '../support/cleanup.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const TOKEN = Buffer.from('sa:default:web');
const { burst, summaryEveryMs } = REJECTION_LOG_DEFAULTS;

interface Line {
  event?: string;
  rpc?: string;
  code?: string;
  grpcCode?: string;
  msg?: string;
  suppressed?: Record<string, number>;
  apis?: Record<string, number>;
  api?: string;
  total?: number;
}

/** A rejection log on a FakeClock and a scheduler the test ticks by hand, writing to `lines`. */
function harness(options: { burst?: number; perSecond?: number } = {}) {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line);
      cb();
    },
  });
  const clock = new FakeClock();
  const ticks: (() => void)[] = [];
  let stopped = 0;
  const log = createRejectionLog({
    logger: pino({ level: 'info' }, sink),
    clock,
    ...options,
    every: (ms, fn) => {
      assert.equal(ms, summaryEveryMs);
      ticks.push(fn);
      return () => {
        stopped++;
      };
    },
  });
  const tick = (): void => {
    for (const fn of ticks) fn();
  };
  const admitted = (code: Parameters<typeof log.admit>[0], n: number): number =>
    Array.from({ length: n }, () => log.admit(code)).filter(Boolean).length;
  return { log, lines, clock, tick, admitted, stopped: () => stopped };
}

describe('the rejection log (rate of the lines of rejected calls)', () => {
  it('lets `burst` lines of one code through at once, then `perSecond`, and counts the rest', () => {
    const h = harness({ burst: 5, perSecond: 2 });
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 100), 5);
    h.clock.advance(1000);
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 100), 2);
    h.clock.advance(500);
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 100), 1);
    // a long quiet spell refills the bucket to `burst`, no further
    h.clock.advance(3_600_000);
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 100), 5);
  });

  it('limits each code on its own: a flood of one does not silence another', () => {
    const h = harness({ burst: 3 });
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 1000), 3);
    assert.equal(h.admitted('ERR_CSR_NAMES', 10), 3);
    assert.equal(h.admitted('ERR_OVERLOADED', 1), 1);
  });

  it('writes one summary of the lines left out, by code, when its timer ticks, and none when nothing was left out', () => {
    const h = harness({ burst: 2 });
    h.admitted('ERR_TOKEN_INVALID', 12);
    h.admitted('ERR_CSR_SIGNATURE', 3);
    assert.equal(h.lines.length, 0, 'the log itself writes no line for an admitted call');
    h.clock.advance(summaryEveryMs);
    h.tick();
    assert.equal(h.lines.length, 1);
    assert.equal(h.lines[0]?.event, 'log_suppressed');
    assert.deepEqual(h.lines[0]?.suppressed, { ERR_TOKEN_INVALID: 10, ERR_CSR_SIGNATURE: 1 });
    assert.equal(h.lines[0]?.total, 11);
    assert.equal(h.lines[0]?.rpc, undefined, 'not mistaken for the line of a call');
    h.clock.advance(summaryEveryMs);
    h.tick();
    assert.equal(h.lines.length, 1, 'nothing was left out since');
  });

  it('limits each API on its own and says in the summary which API the lines left out were of', () => {
    const h = harness({ burst: 2 });
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 5), 2, 'Certify by default');
    const istio = Array.from({ length: 4 }, () => h.log.admit('ERR_TOKEN_INVALID', 'CreateCertificate'));
    assert.equal(
      istio.filter(Boolean).length,
      2,
      "a Certify flood does not silence CreateCertificate's lines",
    );
    h.log.flush();
    assert.equal(h.lines.length, 1);
    assert.deepEqual(h.lines[0]?.suppressed, { ERR_TOKEN_INVALID: 5 });
    assert.deepEqual(h.lines[0]?.apis, { Certify: 3, CreateCertificate: 2 });
    assert.equal(h.lines[0]?.api, undefined, 'no single api named');
  });

  it('writes the summary when a rejected call finds it due, without its timer, and on close', () => {
    const h = harness({ burst: 1, perSecond: 1 });
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 4), 1);
    h.clock.advance(summaryEveryMs - 1);
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 1), 1, 'the bucket refilled meanwhile');
    assert.equal(h.lines.length, 0, 'not due yet');
    h.clock.advance(1);
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 1), 0);
    assert.deepEqual(
      h.lines.map((l) => [l.event, l.total]),
      [['log_suppressed', 3]],
    );
    assert.equal(h.admitted('ERR_TOKEN_INVALID', 2), 0);
    h.log.close();
    assert.equal(h.stopped(), 1, 'the timer was stopped');
    assert.deepEqual(
      h.lines.map((l) => [l.event, l.total]),
      [
        ['log_suppressed', 3],
        ['log_suppressed', 3],
      ],
    );
  });
});

describe('Certify under a flood of rejected calls', () => {
  async function requestsTotal(t: TestIssuer, result: string): Promise<number> {
    const m = await t.issuer.metrics.requests.get();
    return m.values.find((v) => v.labels.api === 'Certify' && v.labels.result === result)?.value ?? 0;
  }
  const certifyLines = (t: TestIssuer): Line[] =>
    t.logLines.map((l) => JSON.parse(l) as Line).filter((l) => l.rpc === 'Certify');

  it('logs a bounded number of lines per code, counts every call in lanyard_requests_total, and logs every success', async (ctx) => {
    const clock = new FakeClock();
    const pki = await testPki({ now: clock.now() });
    const t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator(), clock });
    defer(ctx, () => t.close());
    const csr = (await makeCsr({ dns: [ID] })).der;
    const FLOOD = 150;
    for (let i = 0; i < FLOOD; i += 50) {
      const codes = await Promise.all(
        Array.from({ length: 50 }, () =>
          grpcCodeOf(
            t.certify({ identity: ID, token: Buffer.from('forged'), certificate_signing_request: csr }),
          ),
        ),
      );
      assert.deepEqual(new Set(codes), new Set(['UNAUTHENTICATED']));
    }
    // oversized messages are ended by the transport, before the handler: the admission
    // interceptor's lines are limited the same way
    const oversized = await Promise.all(
      Array.from({ length: 40 }, () =>
        grpcCodeOf(
          t.certify({
            identity: ID,
            token: Buffer.alloc(70 * 1024, 0x61),
            certificate_signing_request: csr,
          }),
        ),
      ),
    );
    assert.deepEqual(new Set(oversized), new Set(['RESOURCE_EXHAUSTED']));
    for (let i = 0; i < 3; i++) {
      assert.equal(
        await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr })),
        'OK',
      );
    }
    // an oversized call is counted when the transport ends it, which may come after its answer
    await waitFor(
      async () => (await requestsTotal(t, 'RESOURCE_EXHAUSTED')) >= 40,
      'the oversized calls to be counted',
      { intervalMs: 10 },
    );

    assert.equal(await requestsTotal(t, 'UNAUTHENTICATED'), FLOOD, 'every rejected call is counted');
    assert.equal(await requestsTotal(t, 'RESOURCE_EXHAUSTED'), 40);
    assert.equal(await requestsTotal(t, 'OK'), 3);
    const lines = certifyLines(t);
    const byGrpc = (name: string): number => lines.filter((l) => l.grpcCode === name).length;
    assert.equal(byGrpc('UNAUTHENTICATED'), burst, `${FLOOD} bad tokens, ${burst} lines`);
    assert.equal(byGrpc('RESOURCE_EXHAUSTED'), burst);
    assert.equal(lines.filter((l) => l.msg === 'certified').length, 3, 'one line per successful call');
    assert.equal(t.logLines.filter((l) => l.includes('"event":"log_suppressed"')).length, 0, 'not due yet');

    // a minute later: the next rejected call brings the summary of what was left out, and its own line
    clock.advance(summaryEveryMs);
    assert.equal(
      await grpcCodeOf(
        t.certify({ identity: ID, token: Buffer.from('forged'), certificate_signing_request: csr }),
      ),
      'UNAUTHENTICATED',
    );
    await new Promise((r) => setTimeout(r, 50));
    const summaries = t.logLines
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => l.event === 'log_suppressed');
    assert.equal(summaries.length, 1);
    assert.deepEqual(summaries[0]?.suppressed, {
      ERR_TOKEN_INVALID: FLOOD - burst,
      ERR_INVALID_REQUEST: 40 - burst,
    });
    assert.equal(certifyLines(t).filter((l) => l.grpcCode === 'UNAUTHENTICATED').length, burst + 1);
  });
});
