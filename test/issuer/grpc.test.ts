import assert from 'node:assert/strict';
import { systemClock } from '../../ca/index.js';
import { after, before, describe, it } from 'node:test';
import { parseCertificate } from '../../ca/index.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { grpcCodeOf, startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { opensslVerify } from '../support/openssl.js';
import { waitFor } from '../support/wait.js';
import { csrKey, makeCsr, testPki, type TestPki } from '../support/pki.js';
import { defer } from '../support/cleanup.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const TOKEN = Buffer.from('sa:default:web');

describe('Certify over gRPC', () => {
  let pki: TestPki;
  let t: TestIssuer;
  const authn = scriptedAuthenticator();
  let goodCsr: Buffer;

  before(async () => {
    pki = await testPki({ now: systemClock.now(), clusters: ['east'] });
    t = await startTestIssuer({ pki, authenticator: authn });
    goodCsr = (await makeCsr({ dns: [ID] })).der;
  });
  after(async () => {
    await t.close();
  });

  it('returns a leaf that openssl verifies for client and server use with the returned intermediates', async () => {
    const res = await t.certify({ identity: ID, token: TOKEN, certificate_signing_request: goodCsr });
    assert.equal(res.intermediate_certificates.length, 1);
    const issuerDer = res.intermediate_certificates[0] as Buffer;
    assert.ok(issuerDer.equals(pki.issuers.east?.cert.der as Buffer), 'the issuer certificate comes first');
    for (const purpose of ['sslclient', 'sslserver'] as const) {
      const r = opensslVerify({
        leaf: res.leaf_certificate,
        intermediates: res.intermediate_certificates,
        anchors: [pki.anchor.cert.der],
        purpose,
      });
      assert.ok(r.ok, r.stderr);
    }
    const leaf = parseCertificate(res.leaf_certificate);
    assert.deepEqual(leaf.dnsNames, [ID]);
    assert.deepEqual(leaf.uris, ['spiffe://cluster.local/ns/default/sa/web']);
    assert.equal(Number(res.valid_until.seconds), leaf.notAfter.getTime() / 1000);
  });

  it('never sends the anchor among the intermediates', async () => {
    const res = await t.certify({ identity: ID, token: TOKEN, certificate_signing_request: goodCsr });
    for (const d of res.intermediate_certificates) assert.ok(!d.equals(pki.anchor.cert.der));
  });

  it('answers INVALID_ARGUMENT for missing fields and CSRs that do not parse or verify', async () => {
    assert.equal(
      await grpcCodeOf(t.certify({ token: TOKEN, certificate_signing_request: goodCsr })),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, certificate_signing_request: goodCsr })),
      'INVALID_ARGUMENT',
    );
    assert.equal(await grpcCodeOf(t.certify({ identity: ID, token: TOKEN })), 'INVALID_ARGUMENT');
    assert.equal(
      await grpcCodeOf(
        t.certify({ identity: ID, token: TOKEN, certificate_signing_request: Buffer.from('garbage') }),
      ),
      'INVALID_ARGUMENT',
    );
    const tampered = Buffer.from(goodCsr);
    tampered.writeUInt8((tampered.at(-3) as number) ^ 0x01, tampered.length - 3);
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: tampered })),
      'INVALID_ARGUMENT',
    );
  });

  it('answers PERMISSION_DENIED when the CSR names differ from the requested identity, before the token is checked', async () => {
    const before = authn.calls;
    const other = (await makeCsr({ dns: ['db.default.serviceaccount.identity.linkerd.cluster.local'] })).der;
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: other })),
      'PERMISSION_DENIED',
    );
    const withUri = (await makeCsr({ dns: [ID], uris: ['spiffe://cluster.local/ns/default/sa/admin'] })).der;
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: withUri })),
      'PERMISSION_DENIED',
    );
    const withIp = (await makeCsr({ dns: [ID], ips: ['10.0.0.1'] })).der;
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: withIp })),
      'PERMISSION_DENIED',
    );
    const wrongCn = (await makeCsr({ dns: [ID], subject: 'CN=admin' })).der;
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: wrongCn })),
      'PERMISSION_DENIED',
    );
    assert.equal(authn.calls, before, 'the authenticator was not consulted');
  });

  it('answers UNAUTHENTICATED for a token that is not valid', async () => {
    assert.equal(
      await grpcCodeOf(
        t.certify({ identity: ID, token: Buffer.from('forged'), certificate_signing_request: goodCsr }),
      ),
      'UNAUTHENTICATED',
    );
  });

  it('answers UNAVAILABLE when the authenticator backend is unreachable', async () => {
    assert.equal(
      await grpcCodeOf(
        t.certify({ identity: ID, token: Buffer.from('down'), certificate_signing_request: goodCsr }),
      ),
      'UNAVAILABLE',
    );
  });

  it("answers PERMISSION_DENIED when the token's identity is not the requested one", async () => {
    assert.equal(
      await grpcCodeOf(
        t.certify({
          identity: ID,
          token: Buffer.from('sa:default:admin'),
          certificate_signing_request: goodCsr,
        }),
      ),
      'PERMISSION_DENIED',
    );
  });

  it('answers PERMISSION_DENIED for a key type the policy does not allow', async () => {
    const p384 = (await makeCsr({ key: csrKey('p384'), dns: [ID] })).der;
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: p384 })),
      'PERMISSION_DENIED',
    );
    const rsa = (await makeCsr({ key: csrKey('rsa2048'), dns: [ID] })).der;
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: rsa })),
      'PERMISSION_DENIED',
    );
  });

  it('rejects a message over 64 KiB and keeps serving', async () => {
    const code = await grpcCodeOf(
      t.certify({ identity: ID, token: Buffer.alloc(70 * 1024, 0x61), certificate_signing_request: goodCsr }),
    );
    assert.equal(code, 'RESOURCE_EXHAUSTED');
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: goodCsr })),
      'OK',
    );
  });

  it('logs one line per call and never the token', async () => {
    const secret = 'sa:default:web';
    const n = t.logLines.length;
    await t.certify({ identity: ID, token: Buffer.from(secret), certificate_signing_request: goodCsr });
    await grpcCodeOf(
      t.certify({
        identity: ID,
        token: Buffer.from('forged-secret-token'),
        certificate_signing_request: goodCsr,
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
    const lines = t.logLines.slice(n).filter((l) => l.includes('"rpc":"Certify"'));
    assert.equal(lines.length, 2);
    for (const l of t.logLines) {
      assert.ok(!l.includes('forged-secret-token'), 'a token leaked into the log');
    }
    const ok = JSON.parse(lines[0] as string) as Record<string, unknown>;
    for (const k of [
      'reqId',
      'rpc',
      'identity',
      'serial',
      'notAfter',
      'issuerSkid',
      'durationMs',
      'cluster',
      'service',
    ]) {
      assert.ok(k in ok, `log line lacks ${k}`);
    }
    const bad = JSON.parse(lines[1] as string) as Record<string, unknown>;
    assert.equal(bad.grpcCode, 'UNAUTHENTICATED');
    assert.equal(bad.code, 'ERR_TOKEN_INVALID');
    assert.equal(bad.reason, 'not-authenticated');
  });
});

describe('Certify without a valid issuer credential', () => {
  it('answers UNAVAILABLE and reports not ready', async (ctx) => {
    const t = await startTestIssuer({ authenticator: scriptedAuthenticator(), emptyDir: true });
    defer(ctx, () => t.close());
    const csr = (await makeCsr({ dns: [ID] })).der;
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr })),
      'UNAVAILABLE',
    );
    const ready = await fetch(`${t.adminUrl}/ready`);
    assert.equal(ready.status, 503);
  });
});

describe('Certify under load', () => {
  it('answers RESOURCE_EXHAUSTED at once beyond the in-flight bound', async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const authn = scriptedAuthenticator();
    const t = await startTestIssuer({ pki, authenticator: authn, maxInFlight: 2 });
    defer(ctx, () => t.close());
    const csr = (await makeCsr({ dns: [ID] })).der;
    authn.hold();
    const held = [1, 2].map(() =>
      t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr }),
    );
    await waitFor(() => authn.waiting >= 2, 'two calls held by the authenticator');
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr })),
      'RESOURCE_EXHAUSTED',
    );
    authn.release();
    for (const p of held) assert.equal(await grpcCodeOf(p), 'OK');
  });

  it('sheds a burst beyond the bound at arrival even when each call is handled without yielding', async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator(), maxInFlight: 8 });
    defer(ctx, () => t.close());
    const csr = (await makeCsr({ dns: [ID] })).der;
    const codes = await Promise.all(
      Array.from({ length: 300 }, () =>
        grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr })),
      ),
    );
    const ok = codes.filter((c) => c === 'OK').length;
    const shed = codes.filter((c) => c === 'RESOURCE_EXHAUSTED').length;
    assert.equal(ok + shed, 300, `unexpected codes: ${[...new Set(codes)].join(', ')}`);
    assert.ok(shed > 0, 'a burst of 300 over one connection against a bound of 8 sheds some calls');
    assert.ok(ok >= 8);
    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    assert.match(
      metrics,
      /lanyard_requests_in_flight\{api="Certify"\} 0\b/,
      'every admitted call was released',
    );
  });

  it("honours the client's deadline: the authenticator is aborted and the caller gets DEADLINE_EXCEEDED", async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const authn = scriptedAuthenticator();
    const t = await startTestIssuer({ pki, authenticator: authn });
    defer(ctx, () => t.close());
    const csr = (await makeCsr({ dns: [ID] })).der;
    authn.hold();
    assert.equal(
      await grpcCodeOf(
        t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr }, { deadlineMs: 200 }),
      ),
      'DEADLINE_EXCEEDED',
    );
    await waitFor(() => authn.aborted >= 1, 'the authenticator call to be aborted');
    authn.release();
  });

  it('drains in-flight calls on shutdown and refuses new ones', async () => {
    const pki = await testPki({ now: systemClock.now() });
    const authn = scriptedAuthenticator();
    const t = await startTestIssuer({ pki, authenticator: authn });
    const csr = (await makeCsr({ dns: [ID] })).der;
    authn.hold();
    const inFlight = t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr });
    await waitFor(() => authn.waiting >= 1, 'a call held by the authenticator');
    const stopping = t.issuer.shutdown(5000);
    await new Promise((r) => setTimeout(r, 50));
    const ready = await fetch(`${t.adminUrl}/ready`).then(
      (r) => r.status,
      () => 'closed',
    );
    assert.notEqual(ready, 200, 'not ready while draining');
    authn.release();
    assert.equal(await grpcCodeOf(inFlight), 'OK', 'the in-flight call completed');
    await stopping;
    assert.equal(
      await grpcCodeOf(
        t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr }, { deadlineMs: 500 }),
      ),
      'UNAVAILABLE',
    );
    await t.close();
  });

  it('ends the calls still in flight when the shutdown grace period runs out', async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const authn = scriptedAuthenticator();
    const t = await startTestIssuer({ pki, authenticator: authn });
    defer(ctx, () => t.close());
    defer(ctx, () => {
      authn.release();
    });
    const csr = (await makeCsr({ dns: [ID] })).der;
    authn.hold();
    const stuck = grpcCodeOf(
      t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr }, { deadlineMs: 10_000 }),
    );
    await waitFor(() => authn.waiting >= 1, 'a call held by the authenticator');
    const started = performance.now();
    await t.issuer.shutdown(200);
    assert.equal(await stuck, 'UNAVAILABLE', 'the caller learns at once that it must retry elsewhere');
    assert.ok(performance.now() - started < 2000, 'shutdown did not wait for the stuck call');
    assert.ok(t.logLines.some((l) => l.includes('"event":"grace_expired"')));
    await waitFor(() => authn.aborted === 1, 'the authenticator call to be aborted');
    const lines = t.logLines
      .map((l) => JSON.parse(l) as { rpc?: string; code?: string; grpcCode?: string })
      .filter((l) => l.rpc === 'Certify');
    assert.deepEqual(
      lines.map((l) => [l.grpcCode, l.code]),
      [['UNAVAILABLE', 'ERR_AUTHENTICATOR_UNAVAILABLE']],
      'one line for the call: its token check was cut short',
    );
  });
});
