// An issuer's OWN name constraints apply to the leaves it signs. Those Lanyard cannot evaluate (a
// subtree with minimum/maximum, which OpenSSL refuses every path under) must refuse the credential
// when it is loaded, not fail every Certify call afterwards while the service reports ready.
// Every issuer here is made by the openssl binary (`x509 -req -extfile`, the extension given as DER).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  createIssuerCredential,
  encodePem,
  systemClock,
  workloadIdentity,
  type CertificateInfo,
} from '../../ca/index.js';
import { type Signer } from '../../ca/keys/index.js';
import { opensslIssuerFactory, templateLeaf, type OpensslIssuer } from '../support/openssl-ca.js';
import { opensslVerify } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { testPki, type TestPki } from '../support/pki.js';

/** a little after the wall clock, so openssl's own notBefore (its "now") lies before it */
const NOW = new Date(systemClock.now().getTime() + 120_000);
const AT = Math.floor(NOW.getTime() / 1000);
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });

const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag, body.length]), body]);

/** NameConstraints DER with one subtree: `base` (a GeneralName) plus `bounds` ([0] minimum, [1] maximum). */
function nameConstraintsDer(kind: 'permitted' | 'excluded', base: Buffer, bounds: Buffer): string {
  const subtree = tlv(0x30, Buffer.concat([base, bounds]));
  return tlv(0x30, tlv(kind === 'permitted' ? 0xa0 : 0xa1, subtree)).toString('hex');
}
const dnsName = (s: string): Buffer => tlv(0x82, Buffer.from(s, 'latin1'));
const uriName = (s: string): Buffer => tlv(0x86, Buffer.from(s, 'latin1'));
const minimum = (n: number): Buffer => tlv(0x80, Buffer.from([n]));
const maximum = (n: number): Buffer => tlv(0x81, Buffer.from([n]));

describe("an issuer's own name constraints that Lanyard cannot evaluate", () => {
  let pki: TestPki;
  let dir: string;
  let cleanup: () => void;
  let issuerOf: ReturnType<typeof opensslIssuerFactory>;

  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-issuer-nc-'));
    pki = await testPki({ now: new Date(NOW.getTime() - 3_600_000) });
    issuerOf = opensslIssuerFactory(pki, dir);
  });
  after(() => {
    cleanup();
  });

  /** A pathlen:0 intermediate signed by the test anchor with openssl, carrying `nameConstraintsHex` (critical). */
  const opensslIssuer = (nameConstraintsHex: string): Promise<OpensslIssuer> =>
    issuerOf([`nameConstraints = critical,DER:${nameConstraintsHex}`]);

  /** openssl's verdict on a leaf for WEB signed by `issuer` through the raw template. */
  function opensslAcceptsLeaf(issuer: { cert: CertificateInfo; signer: Signer }): boolean {
    const leaf = templateLeaf(issuer, NOW, { dnsName: WEB.dns, uri: WEB.spiffeId });
    return opensslVerify({
      leaf,
      intermediates: [issuer.cert.der],
      anchors: [pki.anchor.cert.der],
      purpose: 'sslserver',
      atSeconds: AT,
    }).ok;
  }

  function load(issuer: { cert: CertificateInfo; signer: Signer }): void {
    createIssuerCredential({
      certificatePem: encodePem('CERTIFICATE', issuer.cert.der),
      signer: issuer.signer,
      anchorsPem: pki.anchorsPem,
      now: NOW,
    });
  }

  it('loads an issuer whose DNS subtree has no minimum/maximum (control: the harness itself works)', async () => {
    const issuer = await opensslIssuer(
      nameConstraintsDer('permitted', dnsName('cluster.local'), Buffer.alloc(0)),
    );
    assert.equal(opensslAcceptsLeaf(issuer), true);
    load(issuer);
  });

  it('refuses at load an issuer with a permitted DNS subtree bearing a maximum (ERR_NAME_CONSTRAINTS_UNSUPPORTED)', async () => {
    const issuer = await opensslIssuer(nameConstraintsDer('permitted', dnsName('cluster.local'), maximum(5)));
    assert.equal(opensslAcceptsLeaf(issuer), false);
    assert.throws(
      () => {
        load(issuer);
      },
      { code: 'ERR_NAME_CONSTRAINTS_UNSUPPORTED' },
    );
  });

  it('refuses at load an issuer with an excluded URI subtree bearing a minimum (ERR_NAME_CONSTRAINTS_UNSUPPORTED)', async () => {
    const issuer = await opensslIssuer(nameConstraintsDer('excluded', uriName('evil.example'), minimum(1)));
    assert.equal(opensslAcceptsLeaf(issuer), false);
    assert.throws(
      () => {
        load(issuer);
      },
      { code: 'ERR_NAME_CONSTRAINTS_UNSUPPORTED' },
    );
  });
});
