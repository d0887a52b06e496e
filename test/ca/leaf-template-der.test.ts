import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createLeafTemplate, parseCertificate, type CertificateInfo } from '../../ca/index.js';
import {
  bitString,
  explicit,
  implicitPrim,
  octetString,
  OID,
  oid,
  seq,
  time,
  TRUE,
  unsignedInteger,
} from '../../ca/der/index.js';
import { describeSigner, type Signer } from '../../ca/keys/index.js';
import { keyIdentifier } from '../../ca/profiles.js';
import { type LeafRequest } from '../../ca/leaf-template.js';
import { opensslVerify } from '../support/openssl.js';
import { csrKey, spkiOf, testPki, type TestPki } from '../support/pki.js';

// The leaf template writes its DER in one pass (ca/leaf-template.ts writeTbs/writeCertificate). This is
// the element-by-element construction it replaced, from der/writer.ts: both must give the same bytes.
const ext = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical ? seq(oid(id), TRUE, octetString(value)) : seq(oid(id), octetString(value));

function referenceLeaf(
  issuer: CertificateInfo,
  signer: Signer,
  req: LeafRequest & { readonly serial: Buffer },
  signature: Buffer,
): { tbs: Buffer; der: Buffer } {
  const aki = issuer.subjectKeyId ?? keyIdentifier(issuer.spki);
  const sigAlg = describeSigner(signer).signatureAlgorithmDer;
  const tbs = seq(
    explicit(0, Buffer.from([0x02, 0x01, 0x02])),
    unsignedInteger(req.serial),
    sigAlg,
    issuer.subjectDer,
    seq(time(req.notBefore), time(req.notAfter)),
    seq(),
    req.spki,
    explicit(
      3,
      seq(
        ext(OID.basicConstraints, true, seq()),
        ext(
          OID.keyUsage,
          true,
          Buffer.from(req.keyEncipherment === true ? [0x03, 0x02, 0x05, 0xa0] : [0x03, 0x02, 0x07, 0x80]),
        ),
        ext(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))),
        ext(OID.authorityKeyIdentifier, false, seq(implicitPrim(0, aki))),
        ext(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(req.spki))),
        ext(
          OID.subjectAltName,
          true,
          seq(
            ...(req.dnsName === undefined ? [] : [implicitPrim(2, Buffer.from(req.dnsName, 'latin1'))]),
            implicitPrim(6, Buffer.from(req.uri, 'latin1')),
          ),
        ),
      ),
    ),
  );
  return { tbs, der: seq(tbs, sigAlg, bitString(signature)) };
}

/** `signer`'s algorithm and key, with a fixed signature of `length` bytes (lengths a real key never gives). */
function fixedSignature(signer: Signer, length: number): { signer: Signer; signature: Buffer } {
  const signature = Buffer.alloc(length, 0x5a);
  return {
    signature,
    signer: { algorithm: signer.algorithm, publicKeyDer: signer.publicKeyDer, sign: () => signature },
  };
}

describe('the leaf template DER', () => {
  let pki: TestPki;
  before(async () => {
    pki = await testPki({ now: new Date('2026-06-01T00:00:00Z'), clusters: ['east'] });
  });

  it('is byte for byte what the element-by-element construction gives, across length boundaries and both profiles', () => {
    const east = pki.issuers.east;
    assert.ok(east);
    const spkis = [spkiOf(csrKey('p256')), spkiOf(csrKey('p384')), spkiOf(csrKey('rsa2048'))];
    // names whose lengths cross the one-, two- and three-octet DER length forms, with the elements around them
    const nameLengths = [1, 60, 100, 115, 126, 127, 128, 200, 250, 255, 256, 300, 1024];
    const name = (n: number, prefix: string): string => (prefix + 'a'.repeat(n)).slice(0, Math.max(n, 1));
    const dates: [string, string][] = [
      ['2026-06-01T00:00:00Z', '2026-06-02T00:00:00Z'],
      ['1950-01-01T00:00:00Z', '2049-12-31T23:59:59Z'],
      ['1949-12-31T23:59:59Z', '2050-01-01T00:00:00Z'],
      ['2026-01-09T09:05:07.999Z', '9999-12-31T23:59:59Z'],
    ];
    const serials = [
      Buffer.from([0x01]),
      Buffer.from([0x7f]),
      Buffer.from([0x00, 0x80]),
      Buffer.from([0x00, 0xff, 0x01]),
      Buffer.alloc(16, 0x3c),
      Buffer.concat([Buffer.from([0x00]), Buffer.alloc(19, 0xa5)]),
    ];
    let compared = 0;
    for (const sigLength of [64, 71, 72, 127, 256, 512]) {
      const { signer, signature } = fixedSignature(east.signer, sigLength);
      const template = createLeafTemplate(east.cert, signer);
      for (const [i, spki] of spkis.entries())
        for (const [j, dns] of nameLengths.entries())
          for (const [k, [from, to]] of dates.entries()) {
            const uriLength = nameLengths[(j + i + k) % nameLengths.length] as number;
            // Istio leaves too: the URI alone (every third case), keyEncipherment for the RSA key
            const req = {
              spki,
              dnsName: (j + k) % 3 === 0 ? undefined : name(dns, 'd'),
              keyEncipherment: i === 2,
              uri: name(uriLength, 'spiffe://'),
              notBefore: new Date(from),
              notAfter: new Date(to),
              serial: serials[(i + j + k) % serials.length] as Buffer,
            };
            const leaf = template.sign(req);
            const truncated = {
              ...req,
              notBefore: new Date(Math.floor(req.notBefore.getTime() / 1000) * 1000),
              notAfter: new Date(Math.floor(req.notAfter.getTime() / 1000) * 1000),
            };
            const ref = referenceLeaf(east.cert, signer, truncated, signature);
            assert.ok(leaf.tbs.equals(ref.tbs), `tbs: sig ${sigLength}, spki ${i}, dns ${dns}, dates ${k}`);
            assert.ok(leaf.der.equals(ref.der), `der: sig ${sigLength}, spki ${i}, dns ${dns}, dates ${k}`);
            compared++;
          }
    }
    assert.equal(compared, 6 * 3 * 13 * 4);
  });

  it('gives leaves that parse and that openssl verifies, with the serial and validity reported', () => {
    const east = pki.issuers.east;
    assert.ok(east);
    const template = createLeafTemplate(east.cert, east.signer);
    const leaf = template.sign({
      spki: spkiOf(),
      dnsName: 'web.default.serviceaccount.identity.linkerd.cluster.local',
      uri: 'spiffe://cluster.local/ns/default/sa/web',
      notBefore: new Date('2026-06-01T00:00:00Z'),
      notAfter: new Date('2026-06-01T12:00:00Z'),
    });
    const parsed = parseCertificate(leaf.der);
    assert.equal(parsed.serialHex, leaf.serialHex);
    assert.equal(parsed.notAfter.getTime(), leaf.notAfter.getTime());
    for (const purpose of ['sslclient', 'sslserver'] as const) {
      const r = opensslVerify({
        leaf: leaf.der,
        intermediates: [east.cert.der],
        anchors: [pki.anchor.cert.der],
        purpose,
        atSeconds: Date.parse('2026-06-01T06:00:00Z') / 1000,
      });
      assert.ok(r.ok, r.stderr);
    }
  });
});
