import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IDENTITY_DOMAIN, parseCertificatesPem, workloadIdentity } from '../../../ca/index.js';
import { issuerCredentialFromPem, loadIssuerCredential } from '../../../ca/store/index.js';
import { inspectFiles } from '../../../ca/inspect/inspect-files.js';
import { issueLeafFile, offlineLeafPolicy } from '../../../ca/store/leaf-files.js';
import { HOUR } from '../../support/clock.js';
import { tempDir } from '../../support/temp-dir.js';
import { makeCsr, testPki, type TestPki } from '../../support/pki.js';

const NOW = new Date('2026-06-01T00:00:00Z');

describe('loadIssuerCredential / issuerCredentialFromPem', () => {
  let pki: TestPki;
  let other: TestPki;
  let root: string;

  before(async () => {
    pki = await testPki({ now: NOW, clusters: ['east', 'west'] });
    other = await testPki({ now: NOW });
    const t = tempDir('lanyard-issuer-cred-');
    after(t.cleanup);
    root = t.dir;
  });

  function issuerDir(name: string, files: Record<string, string>): string {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text, { mode: 0o600 });
    return dir;
  }
  const east = (p: TestPki): NonNullable<TestPki['issuers'][string]> => {
    const i = p.issuers.east;
    assert.ok(i);
    return i;
  };

  it('assembles the credential of a kubernetes.io/tls directory: certificate, signer, anchors', async () => {
    const dir = issuerDir('k8s', {
      'tls.crt': east(pki).certPem,
      'tls.key': east(pki).keyPem,
      'ca.crt': pki.anchorsPem,
    });
    const cred = await loadIssuerCredential(dir, { now: NOW });
    assert.ok(cred.certificate.der.equals(east(pki).cert.der));
    assert.ok(cred.anchor.der.equals(pki.anchor.cert.der));
    assert.ok(Buffer.from(cred.signer.publicKeyDer).equals(east(pki).cert.spki));
  });

  it('reads the linkerd.io/tls layout too', async () => {
    const dir = issuerDir('linkerd', {
      'crt.pem': east(pki).certPem,
      'key.pem': east(pki).keyPem,
      'ca.crt': pki.anchorsPem,
    });
    const cred = await loadIssuerCredential(dir, { now: NOW });
    assert.ok(cred.certificate.der.equals(east(pki).cert.der));
  });

  it('takes the anchors from trustAnchorsPath when given, instead of DIR/ca.crt', async () => {
    const dir = issuerDir('override', {
      'tls.crt': east(pki).certPem,
      'tls.key': east(pki).keyPem,
      'ca.crt': other.anchorsPem,
    });
    await assert.rejects(loadIssuerCredential(dir, { now: NOW }), { code: 'ERR_CHAIN_UNTRUSTED' });
    const anchors = join(root, 'anchors.pem');
    writeFileSync(anchors, pki.anchorsPem);
    const cred = await loadIssuerCredential(dir, { now: NOW, trustAnchorsPath: anchors });
    assert.ok(cred.anchor.der.equals(pki.anchor.cert.der));
  });

  it("refuses a key that is not the certificate's (ERR_KEY_MISMATCH)", () => {
    const west = pki.issuers.west;
    assert.ok(west);
    assert.throws(
      () =>
        issuerCredentialFromPem(
          {
            certificatePem: east(pki).certPem,
            keyPem: west.keyPem,
            keyPath: 'tls.key',
            anchorsPem: pki.anchorsPem,
          },
          NOW,
        ),
      { code: 'ERR_KEY_MISMATCH' },
    );
  });

  it('refuses a directory with neither layout (ERR_FILE_NOT_FOUND)', async () => {
    await assert.rejects(loadIssuerCredential(issuerDir('empty', {}), { now: NOW }), {
      code: 'ERR_FILE_NOT_FOUND',
    });
  });

  it('judges validity at the `now` it is given', async () => {
    const dir = issuerDir('expiry', {
      'tls.crt': east(pki).certPem,
      'tls.key': east(pki).keyPem,
      'ca.crt': pki.anchorsPem,
    });
    const late = new Date(east(pki).cert.notAfter.getTime() + HOUR);
    await assert.rejects(loadIssuerCredential(dir, { now: late }), { code: 'ERR_CERT_EXPIRED' });
  });
});

describe('issueLeafFile', () => {
  it('writes the leaf then the issuer chain, signed under the policy it was given', async (t) => {
    const pki = await testPki({ now: NOW });
    const tmp = tempDir('lanyard-leaf-file-');
    t.after(tmp.cleanup);
    const issuer = pki.issuers.east;
    assert.ok(issuer);
    writeFileSync(join(tmp.dir, 'tls.crt'), issuer.certPem);
    writeFileSync(join(tmp.dir, 'tls.key'), issuer.keyPem, { mode: 0o600 });
    writeFileSync(join(tmp.dir, 'ca.crt'), pki.anchorsPem);
    const identity = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });
    const { der } = await makeCsr({ dns: [identity.dns], keySpec: 'p384' });
    writeFileSync(join(tmp.dir, 'req.csr'), der);
    const request = {
      issuerDir: tmp.dir,
      csrPath: join(tmp.dir, 'req.csr'),
      identity,
      lifetimeMs: HOUR,
      outPath: join(tmp.dir, 'leaf.pem'),
      now: NOW,
    };
    await assert.rejects(issueLeafFile(request), { code: 'ERR_KEY_NOT_ALLOWED' });
    const issued = await issueLeafFile({ ...request, alsoAllowKeyTypes: ['p384'] });
    assert.ok(issued.notAfter.getTime() - NOW.getTime() <= HOUR + 60_000);
    const [outFile] = await inspectFiles([request.outPath], NOW);
    assert.deepEqual(
      outFile?.items.map((i) => i.kind),
      ['certificate', 'certificate'],
    );
    const written = parseCertificatesPem(readFileSync(request.outPath, 'utf8'), 'leaf.pem');
    assert.ok(written[0]?.der.equals(issued.der));
    assert.ok(written[1]?.der.equals(issuer.cert.der));
  });

  it('refuses a CSR file it cannot read (ERR_FILE_NOT_FOUND)', async (t) => {
    const pki = await testPki({ now: NOW });
    const tmp = tempDir('lanyard-leaf-file-');
    t.after(tmp.cleanup);
    const issuer = pki.issuers.east;
    assert.ok(issuer);
    writeFileSync(join(tmp.dir, 'tls.crt'), issuer.certPem);
    writeFileSync(join(tmp.dir, 'tls.key'), issuer.keyPem, { mode: 0o600 });
    writeFileSync(join(tmp.dir, 'ca.crt'), pki.anchorsPem);
    await assert.rejects(
      issueLeafFile({
        issuerDir: tmp.dir,
        csrPath: join(tmp.dir, 'missing.csr'),
        identity: workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' }),
        lifetimeMs: HOUR,
        outPath: join(tmp.dir, 'leaf.pem'),
        now: NOW,
      }),
      { code: 'ERR_FILE_NOT_FOUND' },
    );
  });
});

describe('offlineLeafPolicy', () => {
  it('always accepts p256, adds the key types asked for once, and keeps the service defaults otherwise', () => {
    assert.deepEqual(offlineLeafPolicy(HOUR).allowedKeyTypes, ['p256']);
    assert.deepEqual(offlineLeafPolicy(HOUR, ['p384', 'p256', 'p384']).allowedKeyTypes, ['p256', 'p384']);
    assert.equal(offlineLeafPolicy(HOUR).lifetimeMs, HOUR);
  });
});
