// Acceptance of issue 13, point 4: with --renew-after ten minutes ahead, the valid_until of 1,000
// Certify answers (real gRPC server, real socket) makes a caller renewing at 70 % of
// (valid_until − now) renew inside [TIME, TIME + spread], never later than notAfter, and the renewals
// spread over the whole window. The hint shows in /v1/status and /metrics.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseCertificate, systemClock } from '../../ca/index.js';
import type { CertifyResponseMessage } from '../../issuer/grpc/server.js';
import { RENEWAL_FRACTION } from '../../issuer/renewal-hint.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock } from '../support/clock.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { makeCsr, testPki } from '../support/pki.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const TOKEN = Buffer.from('sa:default:web');
const MIN = 60_000;
const SPREAD_MS = 10 * MIN; // the default of --renew-spread
const ANSWERS = 1000;

const validUntilMs = (res: CertifyResponseMessage): number =>
  Number(res.valid_until.seconds) * 1000 + Math.floor(res.valid_until.nanos / 1e6);

describe('serve --renew-after ten minutes ahead: 1,000 answers through the gRPC server', () => {
  const clock = new FakeClock(systemClock.now());
  const nowMs = clock.now().getTime();
  const hintMs = nowMs + 10 * MIN;
  let t: TestIssuer;
  let csr: Buffer;

  before(async () => {
    const pki = await testPki({ now: clock.now() });
    t = await startTestIssuer({
      pki,
      authenticator: scriptedAuthenticator(),
      clock,
      renewAfter: new Date(hintMs).toISOString(),
    });
    csr = (await makeCsr({ dns: [ID] })).der;
  });
  after(() => t.close());

  const certify = () => t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr });

  it('aims every renewal at [TIME, TIME + spread], never past notAfter, spread over the whole window', async () => {
    const answers: CertifyResponseMessage[] = [];
    while (answers.length < ANSWERS)
      answers.push(...(await Promise.all(Array.from({ length: 25 }, () => certify()))));
    const fractions = answers.map((res) => {
      const validUntil = validUntilMs(res);
      const notAfter = parseCertificate(res.leaf_certificate).notAfter.getTime();
      assert.ok(validUntil <= notAfter, `valid_until ${validUntil} after notAfter ${notAfter}`);
      const renewsAt = nowMs + RENEWAL_FRACTION * (validUntil - nowMs);
      // valid_until is rounded up to the millisecond: the renewal may land 0.7 ms late, never early
      assert.ok(
        renewsAt >= hintMs && renewsAt <= hintMs + SPREAD_MS + 1,
        `renews ${renewsAt - hintMs} ms after TIME`,
      );
      return (renewsAt - hintMs) / SPREAD_MS;
    });
    assert.equal(fractions.length, ANSWERS);
    assert.ok(Math.min(...fractions) < 0.1, `earliest at ${Math.min(...fractions)} of the window`);
    assert.ok(Math.max(...fractions) > 0.9, `latest at ${Math.max(...fractions)} of the window`);
    const tenths = new Set(fractions.map((f) => Math.min(9, Math.floor(f * 10))));
    assert.equal(tenths.size, 10, `tenths of the window hit: ${[...tenths].sort().join(',')}`);
  });

  it('shows the hint in /v1/status and as lanyard_renewal_hint_timestamp_seconds', async () => {
    const status = (await (await fetch(`${t.adminUrl}/v1/status`)).json()) as {
      renewalHint: { after: string; spreadMs: number } | null;
    };
    assert.deepEqual(status.renewalHint, { after: new Date(hintMs).toISOString(), spreadMs: SPREAD_MS });
    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    const m = /^lanyard_renewal_hint_timestamp_seconds (\S+)$/m.exec(metrics);
    assert.equal(Number(m?.[1]), hintMs / 1000);
  });

  it('answers valid_until = notAfter once TIME has passed', async () => {
    clock.set(hintMs);
    const res = await certify();
    assert.equal(validUntilMs(res), parseCertificate(res.leaf_certificate).notAfter.getTime());
  });
});

describe('serve without --renew-after', () => {
  it('answers valid_until = notAfter; /v1/status renewalHint is null and the gauge 0', async (ctx) => {
    const clock = new FakeClock(systemClock.now());
    const t = await startTestIssuer({
      pki: await testPki({ now: clock.now() }),
      authenticator: scriptedAuthenticator(),
      clock,
    });
    ctx.after(() => t.close());
    const res = await t.certify({
      identity: ID,
      token: TOKEN,
      certificate_signing_request: (await makeCsr({ dns: [ID] })).der,
    });
    assert.equal(validUntilMs(res), parseCertificate(res.leaf_certificate).notAfter.getTime());
    const status = (await (await fetch(`${t.adminUrl}/v1/status`)).json()) as { renewalHint: unknown };
    assert.equal(status.renewalHint, null);
    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    assert.equal(Number(/^lanyard_renewal_hint_timestamp_seconds (\S+)$/m.exec(metrics)?.[1]), 0);
  });
});
