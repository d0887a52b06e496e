import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import pino from 'pino';
import { LanyardError } from '../../ca/index.js';
import { InvalidTokenError } from '../../issuer/authn/index.js';
import { createCallLog } from '../../issuer/grpc/call-log.js';
import { createRejectionLog } from '../../issuer/grpc/rejection-log.js';
import { createIssuerMetrics } from '../../issuer/metrics.js';
import { FakeClock } from '../support/clock.js';

function setup() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  const metrics = createIssuerMetrics({ defaultMetrics: false });
  const rejections = createRejectionLog({
    logger,
    clock: new FakeClock(),
    burst: 1,
    every: () => () => undefined,
  });
  const calls = createCallLog({ logger, metrics, rejections });
  const samples = async (): Promise<Record<string, number>> => {
    const m = await metrics.requests.get();
    return Object.fromEntries(m.values.map((v) => [String(v.labels.result), v.value]));
  };
  const latencyCount = async (): Promise<number> =>
    (await metrics.latency.get()).values.find(
      (v) => v.metricName === 'lanyard_request_duration_seconds_count',
    )?.value ?? 0;
  const call = { started: process.hrtime.bigint(), reqId: 'r-1', identity: 'web' };
  return { lines, calls, samples, latencyCount, call, rejections };
}

describe('the Certify call log', () => {
  it('writes one line and one requests_total sample for a certified call', async () => {
    const { lines, calls, samples, call } = setup();
    calls.certified(call, { authn: 'spiffe://x', serial: '01', notAfter: 'n', issuerSkid: undefined });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.reqId, 'r-1');
    assert.deepEqual(await samples(), { OK: 1 });
  });

  it('maps a refused call through the one table, with one line and one sample', async () => {
    const { lines, calls, samples, call } = setup();
    const mapped = calls.refused(call, new InvalidTokenError('no', { reason: 'expired' }));
    assert.equal(mapped.code, 'ERR_TOKEN_INVALID');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.code, 'ERR_TOKEN_INVALID');
    assert.equal(lines[0]?.reason, 'expired');
    assert.equal(lines[0]?.grpcCode, 'UNAUTHENTICATED');
    assert.deepEqual(await samples(), { UNAUTHENTICATED: 1 });
  });

  it('counts every refused call but logs them at the rejection rate', async () => {
    const { lines, calls, samples, call } = setup();
    for (let i = 0; i < 3; i++) calls.refused(call, new LanyardError('ERR_CSR_NAMES', 'x'));
    assert.equal(lines.length, 1);
    assert.deepEqual(await samples(), { PERMISSION_DENIED: 3 });
  });

  it('accounts for a call that ended before the handler with one sample and no latency', async () => {
    const { lines, calls, samples, latencyCount } = setup();
    calls.endedBeforeHandler('ERR_OVERLOADED', status.RESOURCE_EXHAUSTED, 'shed', {
      inFlight: 4,
      perPeer: false,
    });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.code, 'ERR_OVERLOADED');
    assert.equal(lines[0]?.grpcCode, 'RESOURCE_EXHAUSTED');
    assert.equal(typeof lines[0]?.reqId, 'string');
    assert.deepEqual(await samples(), { RESOURCE_EXHAUSTED: 1 });
    assert.equal(await latencyCount(), 0);
  });

  it('records the latency of each call the handler answered', async () => {
    const { calls, latencyCount, call } = setup();
    calls.certified(call, { authn: 'spiffe://x', serial: '01', notAfter: 'n', issuerSkid: undefined });
    calls.refused(call, new Error('boom'));
    assert.equal(await latencyCount(), 2);
  });
});
