import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  parseCertificate,
  workloadIdentity,
} from '../../ca/index.js';
import { issueForCsr } from '../../ca/credential.js';
import { parseCsr } from '../../ca/csr.js';
import { OID } from '../../ca/der/oids.js';
import {
  TAG,
  children,
  content,
  readBitStringBytes,
  readIntegerBytes,
  readOid,
  readRoot,
  readSmallInteger,
  readTime,
  readTlv,
  whole,
  type Tlv,
} from '../../ca/der/reader.js';
import {
  bitString,
  encodeLength,
  explicit,
  ia5,
  implicitPrim,
  octetString,
  oid,
  seq,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
  utf8,
} from '../../ca/der/writer.js';
import { x509 } from '../../ca/x509.js';
import { DAY } from '../support/clock.js';
import { opensslText, opensslVerify, parseOpensslText } from '../support/openssl.js';
import { makeCsr, testPki } from '../support/pki.js';

const hex = (b: Buffer): string => b.toString('hex');
const readTimeDer = (b: Buffer): Date => readTime(readRoot(b, b[0]), 't');

describe('DER writer', () => {
  it('encodes lengths in the shortest form', () => {
    assert.equal(hex(encodeLength(0)), '00');
    assert.equal(hex(encodeLength(127)), '7f');
    assert.equal(hex(encodeLength(128)), '8180');
    assert.equal(hex(encodeLength(255)), '81ff');
    assert.equal(hex(encodeLength(256)), '820100');
    assert.equal(hex(encodeLength(65_535)), '82ffff');
    assert.equal(hex(encodeLength(65_536)), '83010000');
    assert.equal(hex(encodeLength(0xffffff)), '83ffffff');
    assert.throws(() => encodeLength(0x1000000), RangeError);
  });

  it('builds TLVs from parts', () => {
    assert.equal(hex(seq()), '3000');
    assert.equal(hex(seq(Buffer.from([1]), Buffer.from([2, 3]))), '3003010203');
    assert.equal(hex(octetString(Buffer.from([0xaa]))), '0401aa');
    assert.equal(hex(bitString(Buffer.from([0xaa]))), '030200aa');
    assert.equal(hex(ia5('a.b')), '1603612e62');
    assert.equal(hex(utf8('é')), '0c02c3a9');
    assert.equal(hex(explicit(3, Buffer.from([5, 0]))), 'a3020500');
    assert.equal(hex(implicitPrim(2, Buffer.from('x'))), '820178');
  });

  it('encodes unsigned integers minimally, padding a set top bit', () => {
    assert.equal(hex(unsignedInteger(Buffer.from([]))), '020100');
    assert.equal(hex(unsignedInteger(Buffer.from([0]))), '020100');
    assert.equal(hex(unsignedInteger(Buffer.from([0, 0, 1]))), '020101');
    assert.equal(hex(unsignedInteger(Buffer.from([0x7f]))), '02017f');
    assert.equal(hex(unsignedInteger(Buffer.from([0x80]))), '02020080');
    assert.equal(hex(unsignedInteger(Buffer.from([0, 0x80, 1]))), '0203008001');
  });

  it('encodes small integers', () => {
    assert.equal(hex(smallInteger(0)), '020100');
    assert.equal(hex(smallInteger(127)), '02017f');
    assert.equal(hex(smallInteger(128)), '02020080');
    assert.equal(hex(smallInteger(256)), '02020100');
    assert.equal(hex(smallInteger(0x7fffffff)), '02047fffffff');
    assert.throws(() => smallInteger(-1), RangeError);
    assert.throws(() => smallInteger(0x80000000), RangeError);
  });

  it('encodes object identifiers', () => {
    assert.equal(hex(oid(OID.ecPublicKey)), '06072a8648ce3d0201');
    assert.equal(hex(oid(OID.subjectAltName)), '0603551d11');
    assert.equal(hex(oid('2.999.3')), '0603883703');
  });

  it('writes UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
    const t = (iso: string): string => {
      const b = time(new Date(iso));
      return `${b[0] === 0x17 ? 'UTC' : 'GEN'} ${content(readRoot(b, b[0])).toString('latin1')}`;
    };
    assert.equal(t('2026-06-01T00:00:00Z'), 'UTC 260601000000Z');
    assert.equal(t('2049-12-31T23:59:59Z'), 'UTC 491231235959Z');
    assert.equal(t('2050-01-01T00:00:00Z'), 'GEN 20500101000000Z');
    assert.equal(t('2051-03-04T05:06:07.890Z'), 'GEN 20510304050607Z');
    assert.equal(t('1950-01-01T00:00:00Z'), 'UTC 500101000000Z');
    assert.equal(t('1949-12-31T23:59:59Z'), 'GEN 19491231235959Z');
  });
});

describe('DER reader', () => {
  it('round-trips TLVs of any length and tag (300 runs)', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 0x1e })
          .chain((low) => fc.constantFrom(low, low | 0x20, low | 0x80, low | 0xa0)),
        fc.uint8Array({ maxLength: 70_000 }),
        (tag, body) => {
          const der = tlv(tag, body);
          const t = readRoot(der, tag);
          assert.equal(t.tag, tag);
          assert.ok(content(t).equals(Buffer.from(body)));
          assert.ok(whole(t).equals(der));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips object identifiers (300 runs)', () => {
    const arcs = fc.array(fc.integer({ min: 0, max: 2 ** 40 }), { maxLength: 8 });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 39 })),
          fc.tuple(fc.constant(2), fc.integer({ min: 0, max: 100_000 })),
        ),
        arcs,
        ([a, b], rest) => {
          const dotted = [a, b, ...rest].join('.');
          assert.equal(readOid(readRoot(oid(dotted), TAG.OID)), dotted);
        },
      ),
      { numRuns: 300 },
    );
    for (const known of Object.values(OID)) assert.equal(readOid(readRoot(oid(known), TAG.OID)), known);
  });

  it('round-trips integers (300 runs)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (n) => {
        assert.equal(readSmallInteger(readRoot(smallInteger(n), TAG.INTEGER), 'n'), n);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 32 }), (mag) => {
        const value = readIntegerBytes(readRoot(unsignedInteger(mag), TAG.INTEGER), 'n');
        assert.equal(BigInt(`0x${hex(value)}`), BigInt(`0x${hex(Buffer.from(mag))}`));
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips times at whole seconds from 1950 to 9999 (500 runs)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1950, 0, 1) / 1000, max: Date.UTC(9999, 11, 31) / 1000 }),
        (s) => {
          const d = new Date(s * 1000);
          assert.deepEqual(readTimeDer(time(d)), d);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reads the children of a constructed element', () => {
    const der = seq(smallInteger(1), octetString(Buffer.from('ab')), seq());
    const kids = children(readRoot(der));
    assert.deepEqual(
      kids.map((k) => k.tag),
      [TAG.INTEGER, TAG.OCTET_STRING, TAG.SEQUENCE],
    );
    assert.equal(content(kids[1] as Tlv).toString(), 'ab');
  });

  it('rejects a truncated element with ERR_DER_TRUNCATED', () => {
    for (const h of ['', '30', '3005020101', '308200', '30820100']) {
      assert.throws(() => readRoot(Buffer.from(h, 'hex')), { code: 'ERR_DER_TRUNCATED' }, h);
    }
    assert.throws(() => children(readRoot(Buffer.from('3003020201', 'hex'))), { code: 'ERR_DER_TRUNCATED' });
  });

  it('rejects bytes after the element with ERR_DER_TRAILING_DATA', () => {
    assert.throws(() => readRoot(Buffer.from('300000', 'hex')), { code: 'ERR_DER_TRAILING_DATA' });
  });

  it('rejects non-DER lengths, multi-byte tags and unexpected tags with ERR_DER_MALFORMED', () => {
    for (const h of [
      '3080020100' + '0000', // indefinite length
      '30810100', // long form for a short length
      '3082000100', // leading zero length octet
      '3085000000000100', // five length octets
      '1f0100', // multi-byte tag
      '0400', // not a SEQUENCE
      '61626364', // text
    ]) {
      assert.throws(() => readRoot(Buffer.from(h, 'hex')), { code: 'ERR_DER_MALFORMED' }, h);
    }
    assert.throws(() => readTlv(Buffer.from('1f8101', 'hex'), 0), { code: 'ERR_DER_MALFORMED' });
  });

  it('rejects malformed object identifiers with ERR_DER_MALFORMED', () => {
    for (const h of ['0600', '06022a8a', '0602802a', `060a2a${'ff'.repeat(8)}7f`]) {
      assert.throws(
        () => readOid(readRoot(Buffer.from(h, 'hex'), TAG.OID)),
        { code: 'ERR_DER_MALFORMED' },
        h,
      );
    }
  });

  it('rejects non-minimal or empty integers and oversized small integers with ERR_DER_MALFORMED', () => {
    for (const h of ['0200', '02020001', '0202ff80']) {
      assert.throws(() => readIntegerBytes(readRoot(Buffer.from(h, 'hex'), TAG.INTEGER), 'n'), {
        code: 'ERR_DER_MALFORMED',
      });
    }
    assert.throws(() => readSmallInteger(readRoot(Buffer.from('02050100000000', 'hex'), TAG.INTEGER), 'n'), {
      code: 'ERR_DER_MALFORMED',
    });
    assert.equal(readSmallInteger(readRoot(Buffer.from('0201ff', 'hex'), TAG.INTEGER), 'n'), -1);
  });

  it('rejects a BIT STRING with unused bits with ERR_DER_MALFORMED', () => {
    assert.throws(() => readBitStringBytes(readRoot(Buffer.from('030207ff', 'hex'), TAG.BIT_STRING), 'b'), {
      code: 'ERR_DER_MALFORMED',
    });
    assert.throws(() => readBitStringBytes(readRoot(Buffer.from('0300', 'hex'), TAG.BIT_STRING), 'b'), {
      code: 'ERR_DER_MALFORMED',
    });
  });

  it('rejects times outside the RFC 5280 profile with ERR_DER_MALFORMED', () => {
    const utc = (s: string): Buffer => tlv(0x17, Buffer.from(s, 'latin1'));
    const gen = (s: string): Buffer => tlv(0x18, Buffer.from(s, 'latin1'));
    for (const bad of [
      utc('2606010000Z'), // no seconds
      utc('260601000000'), // no Z
      utc('260601000000+0100'),
      gen('20500101000000.5Z'), // fractions
      gen('205001010000Z'),
      tlv(0x04, Buffer.from('260601000000Z')), // not a time
      utc('261301000000Z'), // month 13
      utc('260230000000Z'), // 30 February
      utc('260601240000Z'), // hour 24
      utc('260601006000Z'), // minute 60
      gen('20510229000000Z'), // not a leap year
    ]) {
      assert.throws(() => readTimeDer(bad), { code: 'ERR_DER_MALFORMED' }, hex(bad));
    }
    assert.deepEqual(readTimeDer(utc('280229120000Z')), new Date('2028-02-29T12:00:00Z'));
    assert.deepEqual(readTimeDer(gen('20000229235959Z')), new Date('2000-02-29T23:59:59Z'));
    assert.deepEqual(readTimeDer(utc('500101000000Z')), new Date('1950-01-01T00:00:00Z'));
    assert.deepEqual(readTimeDer(utc('491231235959Z')), new Date('2049-12-31T23:59:59Z'));
  });
});

describe('certificates past 2049', () => {
  it('a leaf valid from 2049 to 2051 uses UTCTime then GeneralizedTime, and openssl and @peculiar/x509 read both', async () => {
    const now = new Date('2049-12-31T12:00:00Z');
    const pki = await testPki({ now, anchorLifetimeMs: 10 * 365 * DAY, issuerLifetimeMs: 3 * 365 * DAY });
    const east = pki.issuers.east;
    assert.ok(east);
    const identity = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });
    const csr = parseCsr((await makeCsr({ dns: [identity.dns] })).der);
    const leaf = issueForCsr(east.credential, {
      csr,
      identity,
      policy: { ...DEFAULT_LEAF_POLICY, lifetimeMs: 400 * DAY },
      now,
    });
    const notBefore = new Date('2049-12-31T11:59:40Z');
    const notAfter = new Date('2051-02-04T12:00:20Z');
    assert.deepEqual(leaf.notBefore, notBefore);
    assert.deepEqual(leaf.notAfter, notAfter);
    assert.ok(leaf.der.includes(Buffer.from('\x17\x0d491231115940Z', 'latin1')), 'UTCTime notBefore');
    assert.ok(
      leaf.der.includes(Buffer.from('\x18\x0f20510204120020Z', 'latin1')),
      'GeneralizedTime notAfter',
    );

    const fields = parseOpensslText(opensslText(leaf.der));
    assert.deepEqual(fields.notBefore, notBefore);
    assert.deepEqual(fields.notAfter, notAfter);
    assert.deepEqual(parseCertificate(leaf.der).notAfter, notAfter);
    const peculiar = new x509.X509Certificate(new Uint8Array(leaf.der));
    assert.deepEqual(peculiar.notBefore, notBefore);
    assert.deepEqual(peculiar.notAfter, notAfter);

    const verifyAt = (iso: string): boolean =>
      opensslVerify({
        leaf: leaf.der,
        intermediates: leaf.intermediates,
        anchors: [pki.anchor.cert.der],
        purpose: 'sslserver',
        atSeconds: new Date(iso).getTime() / 1000,
      }).ok;
    assert.equal(verifyAt('2049-12-31T12:00:00Z'), true);
    assert.equal(verifyAt('2051-02-04T12:00:00Z'), true);
    assert.equal(verifyAt('2051-02-04T12:01:00Z'), false, 'expired in 2051 for openssl too');
  });
});
