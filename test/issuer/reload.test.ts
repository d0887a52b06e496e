import assert from 'node:assert/strict';
import { systemClock } from '../../ca/index.js';
import { after, before, describe, it } from 'node:test';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { encodePem, parseCertificate, type CertificateInfo } from '../../ca/index.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { grpcCodeOf, startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { writeAtomicVolume } from '../support/k8s-volume.js';
import { tempDir } from '../support/temp-dir.js';
import { createTestCertificate, makeCsr, testPki, type TestPki } from '../support/pki.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const TOKEN = Buffer.from('sa:default:web');

function secretFiles(pki: TestPki, cluster = 'east'): Record<string, string> {
  const i = pki.issuers[cluster];
  if (i === undefined) throw new Error('no issuer');
  return { 'tls.crt': i.certPem, 'tls.key': i.keyPem, 'ca.crt': pki.anchorsPem };
}

const POLL_MS = 100;

describe('issuer credential reload', () => {
  let dir: string;
  let cleanup: () => void;
  let pki: TestPki;
  let t: TestIssuer;
  let csr: Buffer;
  // the issuer's clock and scheduler: its polls run when the test moves time, never on their own
  const clock = new FakeClock(systemClock.now());

  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-reload-'));
    pki = await testPki({ now: clock.now(), clusters: ['east', 'next'] });
    writeAtomicVolume(dir, secretFiles(pki, 'east'));
    t = await startTestIssuer({
      dir,
      authenticator: scriptedAuthenticator(),
      pollIntervalMs: POLL_MS,
      clock,
      scheduler: clock,
    });
    csr = (await makeCsr({ dns: [ID] })).der;
  });

  /** moves time one poll interval on and waits for the look at the files that this starts */
  const poll = async (): Promise<void> => {
    clock.advance(POLL_MS);
    await t.issuer.credentials.reload();
  };
  after(async () => {
    await t.close();
    cleanup();
  });

  const serving = async (): Promise<string> => {
    const res = await t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr });
    return parseCertificate(res.intermediate_certificates[0] as Buffer).serialHex;
  };

  it('swaps to a new issuer under continuous traffic with no failed call', async () => {
    const east = pki.issuers.east?.cert.serialHex;
    const next = pki.issuers.next?.cert.serialHex;
    assert.equal(await serving(), east);
    let stop = false;
    const results: { code: string; issuer?: string }[] = [];
    let waiting: { n: number; resolve: () => void } | undefined;
    /** resolves once `n` calls have returned */
    const calls = (n: number): Promise<void> =>
      new Promise((resolve) => {
        waiting = { n, resolve };
      });
    const loop = (async () => {
      while (!stop) {
        try {
          results.push({ code: 'OK', issuer: await serving() });
        } catch (err) {
          results.push({ code: String((err as { code?: number }).code) });
        }
        if (waiting !== undefined && results.length >= waiting.n) waiting.resolve();
      }
    })();
    await calls(20);
    writeAtomicVolume(dir, secretFiles(pki, 'next'));
    await poll();
    const afterSwap = results.length;
    await calls(afterSwap + 20);
    stop = true;
    await loop;
    assert.deepEqual(
      results.filter((r) => r.code !== 'OK'),
      [],
      'no call failed',
    );
    const firstNew = results.findIndex((r) => r.issuer === next);
    assert.ok(firstNew > 0);
    assert.ok(
      results.slice(firstNew).every((r) => r.issuer === next),
      'once the new issuer served, the old one never did again',
    );
  });

  for (const [name, files] of [
    [
      'corrupt',
      () => ({
        ...secretFiles(pki, 'next'),
        'tls.crt': '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n',
      }),
    ],
    [
      'partial (certificate without its key)',
      () => ({ 'tls.crt': secretFiles(pki, 'east')['tls.crt'] as string, 'ca.crt': pki.anchorsPem }),
    ],
    [
      'mismatched key',
      () => ({ ...secretFiles(pki, 'east'), 'tls.key': secretFiles(pki, 'next')['tls.key'] as string }),
    ],
  ] as const) {
    it(`rejects a ${name} replacement and keeps the old issuer serving`, async () => {
      const before = await serving();
      const rejectedBefore = await rejectedReloads(t);
      writeAtomicVolume(dir, files());
      await poll();
      assert.ok((await rejectedReloads(t)) > rejectedBefore, 'the replacement is rejected');
      assert.equal(await serving(), before);
      assert.equal((await fetch(`${t.adminUrl}/ready`)).status, 200);
    });
  }

  it('rejects a replacement whose trust anchors hold a certificate that is not a CA, and keeps the old bundle', async () => {
    const before = await serving();
    const bundleBefore = await (await fetch(`${t.adminUrl}/v1/bundle`)).text();
    const rejectedBefore = await rejectedReloads(t);
    writeAtomicVolume(dir, {
      ...secretFiles(pki, 'east'),
      'ca.crt': pki.anchorsPem + encodePem('CERTIFICATE', (await notCa(pki)).der),
    });
    const rejectedNotCa = (): boolean =>
      t.logLines.some((l) => {
        const e = JSON.parse(l) as { event?: string; code?: string };
        return e.event === 'credential_rejected' && e.code === 'ERR_NOT_CA';
      });
    await poll();
    assert.ok(
      (await rejectedReloads(t)) > rejectedBefore && rejectedNotCa(),
      'the non-CA anchor set is rejected',
    );
    assert.equal(await serving(), before);
    for (const path of ['/v1/bundle', '/v1/bundle.spiffe'])
      assert.equal((await fetch(`${t.adminUrl}${path}`)).status, 200, path);
    assert.equal(await (await fetch(`${t.adminUrl}/v1/bundle`)).text(), bundleBefore);
  });

  it('rejects an expired replacement and keeps the old issuer serving', async () => {
    const expired = await testPki({
      now: new Date(Date.parse('2020-01-01T00:00:00Z')),
      issuerLifetimeMs: HOUR,
    });
    const before = await serving();
    const rejectedBefore = await rejectedReloads(t);
    writeAtomicVolume(dir, {
      'tls.crt': expired.issuers.east?.certPem as string,
      'tls.key': expired.issuers.east?.keyPem as string,
      'ca.crt': expired.anchorsPem,
    });
    await poll();
    assert.ok((await rejectedReloads(t)) > rejectedBefore, 'the expired replacement is rejected');
    assert.equal(await serving(), before);
    assert.equal(
      await grpcCodeOf(t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr })),
      'OK',
    );
  });
});

async function rejectedReloads(t: TestIssuer): Promise<number> {
  const text = await (await fetch(`${t.adminUrl}/metrics`)).text();
  const m = /lanyard_credential_reloads_total\{result="rejected"\} (\d+)/.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** A certificate with basicConstraints CA:FALSE, signed by the PKI's anchor. */
async function notCa(p: TestPki): Promise<CertificateInfo> {
  const now = systemClock.now();
  return createTestCertificate({
    issuer: p.anchor,
    subjectSigner: createKeyObjectSigner(await generateKey('p256')),
    commonName: 'not-a-ca',
    notBefore: now,
    notAfter: new Date(now.getTime() + HOUR),
    isCa: false,
  });
}

describe('issuer start with a trust-anchor file holding a certificate that is not a CA', () => {
  it('refuses the credential: not ready, and the bundle endpoints answer 503, never 500', async () => {
    const { dir, cleanup } = tempDir('lanyard-notca-');
    const p = await testPki({ now: systemClock.now() });
    writeAtomicVolume(dir, {
      ...secretFiles(p),
      'ca.crt': p.anchorsPem + encodePem('CERTIFICATE', (await notCa(p)).der),
    });
    const t = await startTestIssuer({ dir, authenticator: scriptedAuthenticator(), pollIntervalMs: 0 });
    try {
      assert.equal((await fetch(`${t.adminUrl}/ready`)).status, 503);
      for (const path of ['/v1/bundle', '/v1/bundle.spiffe'])
        assert.equal((await fetch(`${t.adminUrl}${path}`)).status, 503, path);
      assert.equal(await rejectedReloads(t), 1);
      assert.equal(
        await grpcCodeOf(
          t.certify({
            identity: ID,
            token: TOKEN,
            certificate_signing_request: (await makeCsr({ dns: [ID] })).der,
          }),
        ),
        'UNAVAILABLE',
      );
    } finally {
      await t.close();
      cleanup();
    }
  });
});
