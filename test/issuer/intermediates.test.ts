// `lanyard serve --intermediates FILE` (issue 13, point 3): FILE's certificates are served after the
// issuer certificate of tls.crt, re-read on the one file watch like the other credential files.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import {
  LanyardError,
  encodePem,
  parseCertificate,
  parseCertificatesPem,
  systemClock,
} from '../../ca/index.js';
import { createHandedCredentialSource } from '../../issuer/credential-handoff.js';
import { createDirectoryCredentialSource, type CredentialMaterial } from '../../issuer/credentials.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock } from '../support/clock.js';
import { crossCertificate, testPkiCross, type TestPkiCross } from '../support/cross-pki.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { writeAtomicVolume } from '../support/k8s-volume.js';
import { opensslVerifyEach } from '../support/openssl.js';
import { makeCsr, testKey } from '../support/pki.js';
import { tempDir, testDir } from '../support/temp-dir.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const TOKEN = Buffer.from('sa:default:web');
const POLL_MS = 100;
const silent = pino({ level: 'silent' });

/** An issuer directory of B's issuer whose bundle is {A} alone: only the cross certificate reaches it. */
function writeIssuerB(dir: string, x: TestPkiCross): void {
  writeAtomicVolume(dir, {
    'tls.crt': x.issuerB.certPem,
    'tls.key': x.issuerB.keyPem,
    'ca.crt': x.old.anchorsPem,
  });
}

describe('serve --intermediates: the cross certificate served after the issuer, hot-reloaded', () => {
  const clock = new FakeClock(systemClock.now());
  let x: TestPkiCross;
  let t: TestIssuer;
  let crossDir: string;
  let cleanups: (() => void)[] = [];
  let csr: Buffer;
  const crossSerials: string[] = [];

  before(async () => {
    x = await testPkiCross(clock.now());
    const issuerDir = tempDir('lanyard-intermediates-');
    const crossFiles = tempDir('lanyard-intermediates-file-');
    cleanups = [issuerDir.cleanup, crossFiles.cleanup];
    crossDir = crossFiles.dir;
    writeIssuerB(issuerDir.dir, x);
    const cross = await x.cross();
    crossSerials.push(cross.cert.serialHex);
    writeAtomicVolume(crossDir, { 'cross.pem': cross.pem });
    t = await startTestIssuer({
      dir: issuerDir.dir,
      intermediates: join(crossDir, 'cross.pem'),
      authenticator: scriptedAuthenticator(),
      pollIntervalMs: POLL_MS,
      clock,
      scheduler: clock,
    });
    csr = (await makeCsr({ dns: [ID] })).der;
  });
  after(async () => {
    await t.close();
    for (const c of cleanups) c();
  });

  const poll = async (): Promise<void> => {
    clock.advance(POLL_MS);
    await t.issuer.credentials.reload();
  };
  const certify = () => t.certify({ identity: ID, token: TOKEN, certificate_signing_request: csr });
  const reloads = async (result: 'ok' | 'rejected'): Promise<number> => {
    const text = await (await fetch(`${t.adminUrl}/metrics`)).text();
    const m = new RegExp(`lanyard_credential_reloads_total\\{result="${result}"\\} (\\d+)`).exec(text);
    return m === null ? 0 : Number(m[1]);
  };
  const rejectedWith = (code: string): boolean =>
    t.logLines.some((l) => {
      const e = JSON.parse(l) as { event?: string; code?: string };
      return e.event === 'credential_rejected' && e.code === code;
    });

  it('answers [issuer B, cross(B by A)]; the leaf verifies with openssl against {A} alone and against {B} alone', async () => {
    const res = await certify();
    const chain = res.intermediate_certificates.map((d) => parseCertificate(d));
    assert.deepEqual(
      chain.map((c) => c.serialHex),
      [x.issuerB.cert.serialHex, crossSerials[0]],
    );
    assert.deepEqual(
      opensslVerifyEach({
        leaf: res.leaf_certificate,
        intermediates: res.intermediate_certificates,
        roots: { A: x.old.anchor.cert.der, B: x.anchorB.cert.der },
      }),
      [],
    );
    const status = (await (await fetch(`${t.adminUrl}/v1/status`)).json()) as {
      issuer: { chainPem: string };
    };
    assert.deepEqual(
      parseCertificatesPem(status.issuer.chainPem, 'chain').map((c) => c.serialHex),
      [x.issuerB.cert.serialHex, crossSerials[0]],
    );
    // its expiry is a gauge of its own (the issuer's is lanyard_issuer_expiry_timestamp_seconds)
    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    const expiry = new RegExp(
      `^lanyard_intermediate_expiry_timestamp_seconds\\{serial="${crossSerials[0] ?? ''}"\\} (\\d+)$`,
      'm',
    ).exec(metrics);
    assert.equal(Number(expiry?.[1]), Math.floor((chain[1]?.notAfter.getTime() ?? 0) / 1000));
    assert.equal(metrics.match(/^lanyard_intermediate_expiry_timestamp_seconds\{/gm)?.length, 1);
  });

  it('serves a changed FILE from the next look on', async () => {
    const loadedBefore = await reloads('ok');
    const next = await x.cross();
    crossSerials.push(next.cert.serialHex);
    writeAtomicVolume(crossDir, { 'cross.pem': next.pem });
    await poll();
    assert.equal(await reloads('ok'), loadedBefore + 1);
    const res = await certify();
    assert.equal(parseCertificate(res.intermediate_certificates[1] as Buffer).serialHex, next.cert.serialHex);
  });

  for (const [name, code, files] of [
    ['text that is not PEM', 'ERR_PEM_MALFORMED', { 'cross.pem': 'not a certificate\n' }],
    [
      'a private key',
      'ERR_PEM_UNEXPECTED_TYPE',
      { 'cross.pem': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' },
    ],
    ['an empty file', 'ERR_PEM_MALFORMED', { 'cross.pem': '' }],
    ['a missing file', 'ERR_FILE_NOT_FOUND', { 'other.pem': 'x' }],
  ] as const) {
    it(`rejects ${name} (${code}) and keeps serving the previous credential`, async () => {
      const rejectedBefore = await reloads('rejected');
      writeAtomicVolume(crossDir, files);
      await poll();
      assert.ok((await reloads('rejected')) > rejectedBefore, 'counted as a rejected reload');
      const last = await (await fetch(`${t.adminUrl}/metrics`)).text();
      const at = (result: string): number =>
        Number(
          new RegExp(`lanyard_credential_last_reload_timestamp_seconds\\{result="${result}"\\} (\\S+)`).exec(
            last,
          )?.[1],
        );
      assert.ok(at('rejected') >= at('ok'), 'the latest reload was the rejected one');
      assert.ok(rejectedWith(code), `logged with ${code}`);
      const res = await certify();
      assert.equal(
        parseCertificate(res.intermediate_certificates[1] as Buffer).serialHex,
        crossSerials[crossSerials.length - 1],
      );
      assert.equal((await fetch(`${t.adminUrl}/ready`)).status, 200);
    });
  }

  it("rejects a cross certificate that does not carry B's key (ERR_CROSS_CERT_MISMATCH) or is not signed by A (ERR_CROSS_CERT_UNTRUSTED), and serves on", async () => {
    const other = await testKey();
    const notB = await crossCertificate({
      by: x.old.anchor,
      subject: { ...x.anchorB.cert, spki: Buffer.from(other.signer.publicKeyDer), subjectKeyId: undefined },
      notBefore: clock.now(),
      notAfter: x.anchorB.cert.notAfter,
    });
    const forged = await crossCertificate({
      by: { cert: x.old.anchor.cert, signer: other.signer },
      subject: x.anchorB.cert,
      notBefore: clock.now(),
      notAfter: x.anchorB.cert.notAfter,
    });
    for (const [cert, code] of [
      [notB, 'ERR_CROSS_CERT_MISMATCH'],
      [forged, 'ERR_CROSS_CERT_UNTRUSTED'],
    ] as const) {
      const rejectedBefore = await reloads('rejected');
      writeAtomicVolume(crossDir, { 'cross.pem': encodePem('CERTIFICATE', cert.der) });
      await poll();
      assert.ok((await reloads('rejected')) > rejectedBefore, `${code}: counted as a rejected reload`);
      assert.ok(rejectedWith(code), `logged with ${code}`);
      const res = await certify();
      assert.equal(
        parseCertificate(res.intermediate_certificates[1] as Buffer).serialHex,
        crossSerials[crossSerials.length - 1],
      );
    }
  });

  it('serves a good FILE again once it is put back', async () => {
    const next = await x.cross();
    writeAtomicVolume(crossDir, { 'cross.pem': next.pem });
    await poll();
    const res = await certify();
    assert.equal(parseCertificate(res.intermediate_certificates[1] as Buffer).serialHex, next.cert.serialHex);
  });
});

describe('serve --intermediates at start', () => {
  for (const [name, code, content] of [
    ['missing', 'ERR_FILE_NOT_FOUND', undefined],
    ['not PEM', 'ERR_PEM_MALFORMED', () => 'garbage\n'],
    [
      "a cross certificate of another key than B's",
      'ERR_CROSS_CERT_MISMATCH',
      async (x: TestPkiCross) => {
        const other = await testKey();
        const cert = await crossCertificate({
          by: x.old.anchor,
          subject: {
            ...x.anchorB.cert,
            spki: Buffer.from(other.signer.publicKeyDer),
            subjectKeyId: undefined,
          },
          notBefore: systemClock.now(),
          notAfter: x.anchorB.cert.notAfter,
        });
        return encodePem('CERTIFICATE', cert.der);
      },
    ],
  ] as const) {
    it(`fails the start when FILE is ${name} (${code})`, async (ctx) => {
      const x = await testPkiCross(systemClock.now());
      const dir = testDir(ctx, 'lanyard-intermediates-start-');
      writeIssuerB(join(dir, 'issuer'), x);
      if (content !== undefined) writeAtomicVolume(join(dir, 'cross'), { 'cross.pem': await content(x) });
      await assert.rejects(
        startTestIssuer({
          dir: join(dir, 'issuer'),
          intermediates: join(dir, 'cross', 'cross.pem'),
          authenticator: scriptedAuthenticator(),
          pollIntervalMs: 0,
        }),
        (err: unknown) => err instanceof LanyardError && err.code === code,
      );
    });
  }
});

describe('a cross certificate in tls.crt at start (issuer create --cross-signed)', () => {
  it('fails the start with its code as --intermediates does (ERR_CROSS_CERT_MISMATCH), rather than starting not ready', async (ctx) => {
    const x = await testPkiCross(systemClock.now());
    const dir = testDir(ctx, 'lanyard-cross-tls-start-');
    const other = await testKey();
    const notB = await crossCertificate({
      by: x.old.anchor,
      subject: { ...x.anchorB.cert, spki: Buffer.from(other.signer.publicKeyDer), subjectKeyId: undefined },
      notBefore: systemClock.now(),
      notAfter: x.anchorB.cert.notAfter,
    });
    writeAtomicVolume(dir, {
      'tls.crt': x.issuerB.certPem + encodePem('CERTIFICATE', notB.der),
      'tls.key': x.issuerB.keyPem,
      'ca.crt': x.old.anchorsPem,
    });
    // closed if it starts after all, so that the failure does not keep the test process alive
    const started = startTestIssuer({ dir, authenticator: scriptedAuthenticator(), pollIntervalMs: 0 }).then(
      async (t) => {
        await t.close();
        return t;
      },
    );
    await assert.rejects(
      started,
      (err: unknown) => err instanceof LanyardError && err.code === 'ERR_CROSS_CERT_MISMATCH',
    );
  });
});

describe('serve --intermediates --workers', () => {
  it('hands the workers the issuer certificate followed by FILE, so they serve the cross certificate too', async (ctx) => {
    const clock = new FakeClock(systemClock.now());
    const x = await testPkiCross(clock.now());
    const dir = testDir(ctx, 'lanyard-intermediates-handoff-');
    writeIssuerB(join(dir, 'issuer'), x);
    const cross = await x.cross();
    writeAtomicVolume(join(dir, 'cross'), { 'cross.pem': cross.pem });
    const handed: CredentialMaterial[] = [];
    const source = await createDirectoryCredentialSource({
      dir: join(dir, 'issuer'),
      intermediatesPath: join(dir, 'cross', 'cross.pem'),
      clock,
      scheduler: clock,
      logger: silent,
      pollIntervalMs: 0,
      onMaterial: (m) => handed.push(m),
    });
    ctx.after(() => source.close());
    const worker = createHandedCredentialSource({ logger: silent });
    worker.receive(handed[0]);
    assert.deepEqual(
      worker.current()?.chain.map((c) => c.serialHex),
      [x.issuerB.cert.serialHex, cross.cert.serialHex],
    );
  });
});
