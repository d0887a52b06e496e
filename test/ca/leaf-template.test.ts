import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  createLeafTemplate,
  parseCertificate,
  workloadIdentity,
} from '../../ca/index.js';
import { type LeafRequest, type LeafTemplate } from '../../ca/leaf-template.js';
import { keyIdentifier } from '../../ca/profiles.js';
import { HOUR } from '../support/clock.js';
import { spkiOf, testPki, type TestPki } from '../support/pki.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });

describe('createLeafTemplate', () => {
  let pki: TestPki;
  let template: LeafTemplate;
  let request: LeafRequest;

  before(async () => {
    pki = await testPki({ now: NOW, clusters: ['east', 'west'] });
    const east = pki.issuers.east;
    assert.ok(east);
    template = createLeafTemplate(east.cert, east.signer);
    request = {
      spki: spkiOf(),
      dnsName: WEB.dns,
      uri: WEB.spiffeId,
      notBefore: NOW,
      notAfter: new Date(NOW.getTime() + HOUR),
    };
  });

  it('refuses a signer whose key is not the issuer certificate key with ERR_KEY_MISMATCH', () => {
    const east = pki.issuers.east;
    const west = pki.issuers.west;
    assert.ok(east && west);
    assert.throws(() => createLeafTemplate(east.cert, west.signer), { code: 'ERR_KEY_MISMATCH' });
  });

  it('writes the serial it is given, unchanged', () => {
    for (const hex of ['01', '7f', '0080', '00ff01', '7f'.padEnd(40, 'ab')]) {
      const leaf = template.sign({ ...request, serial: Buffer.from(hex, 'hex') });
      assert.equal(leaf.serialHex, hex);
      assert.equal(parseCertificate(leaf.der).serialHex, hex);
    }
  });

  it('refuses a zero, negative, non-minimal or over-long serial with ERR_INTERNAL', () => {
    for (const hex of ['', '00', '0000', '80', 'ff01', '0012', '0000ff', '01'.repeat(21)]) {
      assert.throws(
        () => template.sign({ ...request, serial: Buffer.from(hex, 'hex') }),
        { code: 'ERR_INTERNAL' },
        hex,
      );
    }
  });

  it('reports the validity as encoded, rounded down to whole seconds', () => {
    const leaf = template.sign({
      ...request,
      notBefore: new Date(NOW.getTime() + 999),
      notAfter: new Date(NOW.getTime() + HOUR + 999),
    });
    const parsed = parseCertificate(leaf.der);
    assert.deepEqual(leaf.notBefore, NOW);
    assert.deepEqual(leaf.notAfter, new Date(NOW.getTime() + HOUR));
    assert.deepEqual(parsed.notBefore, leaf.notBefore);
    assert.deepEqual(parsed.notAfter, leaf.notAfter);
  });

  it('refuses SAN values that are not printable ASCII with ERR_INTERNAL', () => {
    for (const dnsName of ['', 'wéb.example', 'a b.example', 'a\nb', 'x'.repeat(1025)]) {
      assert.throws(
        () => template.sign({ ...request, dnsName }),
        { code: 'ERR_INTERNAL' },
        JSON.stringify(dnsName),
      );
    }
    assert.throws(() => template.sign({ ...request, uri: 'spiffe://cluster.local/ns/ä/sa/web' }), {
      code: 'ERR_INTERNAL',
    });
  });

  it('gives every leaf a fresh random serial when none is requested', () => {
    const a = template.sign(request);
    const b = template.sign(request);
    assert.notEqual(a.serialHex, b.serialHex);
    assert.equal(a.serialHex.length, 32);
  });

  it('signs the same TBSCertificate whether the key identifier is passed in or computed', () => {
    const serial = Buffer.from('4a0b0c0d0e0f1011', 'hex');
    const computed = template.sign({ ...request, serial });
    const given = template.sign({ ...request, serial, subjectKeyId: keyIdentifier(request.spki) });
    assert.ok(given.tbs.equals(computed.tbs));
    assert.ok(
      parseCertificate(given.der).subjectKeyId?.equals(keyIdentifier(request.spki)),
      'the SKI is the key identifier of the leaf key',
    );
  });
});
