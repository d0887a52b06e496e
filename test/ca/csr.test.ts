import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { DEFAULT_LEAF_POLICY, encodePem, parseCsrLenient } from '../../ca/index.js';
import { MAX_CSR_BYTES, parseCsr } from '../../ca/csr.js';
import { MAX_RSA_BITS, MAX_RSA_EXPONENT_BITS } from '../../ca/csr-key.js';
import { inspectBytes } from '../../ca/inspect/index.js';
import { OID } from '../../ca/der/oids.js';
import {
  bitString,
  implicitPrim,
  octetString,
  oid,
  seq,
  smallInteger,
  tlv,
  unsignedInteger,
} from '../../ca/der/writer.js';
import { hostileCsr, rsaCsr, signedCsr, withBadSignature } from '../support/hostile-csr.js';
import { openssl, opensslCsr } from '../support/openssl.js';
import { csrKey, makeCsr } from '../support/pki.js';

const WEB = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const P256_ONLY = DEFAULT_LEAF_POLICY;

/**
 * A PKCS#10 request assembled field by field with the DER writer and signed with node:crypto, for
 * shapes no CSR library will produce (wrong version, missing attributes, odd algorithms, exact sizes).
 */
function handCsr(
  key: KeyObject,
  options: {
    version?: number;
    attributes?: Buffer | null;
    signatureOid?: string;
    hash?: 'sha1' | 'sha256';
    extraPart?: Buffer;
    /** what follows the OID in signatureAlgorithm (default: nothing) */
    signatureParams?: Buffer[];
    /** the SubjectPublicKeyInfo to put in, as is (default: the key's, as node:crypto encodes it) */
    spki?: Buffer;
  } = {},
): Buffer {
  const spki = options.spki ?? createPublicKey(key).export({ type: 'spki', format: 'der' });
  const attributes = options.attributes === undefined ? tlv(0xa0) : options.attributes;
  const info = seq(
    smallInteger(options.version ?? 0),
    seq(),
    spki,
    ...(attributes === null ? [] : [attributes]),
  );
  const signature = sign(options.hash ?? 'sha256', info, key);
  const parts = [
    info,
    seq(oid(options.signatureOid ?? OID.ecdsaWithSha256), ...(options.signatureParams ?? [])),
    bitString(signature),
  ];
  if (options.extraPart !== undefined) parts.push(options.extraPart);
  return seq(...parts);
}

/** An attributes [0] holding one attribute of `size` content bytes in total (padding). */
function paddingAttributes(size: number): Buffer {
  return tlv(0xa0, seq(oid('1.3.6.1.4.1.99999.1'), tlv(0x31, octetString(Buffer.alloc(size, 0x61)))));
}

function flipLastByte(der: Buffer): Buffer {
  const out = Buffer.from(der);
  out[out.length - 1] = (out[out.length - 1] as number) ^ 0x01;
  return out;
}

describe('parseCsr', () => {
  let p256: KeyObject;
  let rsa2048: KeyObject;
  let der: Buffer;

  before(async () => {
    p256 = csrKey('p256');
    rsa2048 = csrKey('rsa2048');
    der = (await makeCsr({ key: p256, dns: [WEB] })).der;
  });

  describe('accepts', () => {
    it('reads the DNS name and key type of a P-256 CSR', () => {
      const csr = parseCsr(der);
      assert.equal(csr.keyType, 'p256');
      assert.deepEqual(csr.dnsNames, [WEB]);
      assert.equal(csr.commonName, undefined);
      assert.equal(csr.otherSubjectAttributes, 0);
    });

    it('returns the request bytes and exactly the public key of the CSR', () => {
      const csr = parseCsr(der);
      assert.ok(csr.der.equals(der));
      assert.ok(csr.spki.equals(createPublicKey(p256).export({ type: 'spki', format: 'der' })));
      assert.ok(csr.publicKey.equals(createPublicKey(p256)));
    });

    it('accepts the same request as PEM, with CRLF line ends and text after the block', () => {
      const pem = encodePem('CERTIFICATE REQUEST', der);
      for (const text of [pem, pem.replaceAll('\n', '\r\n'), `${pem}trailing words\n`]) {
        const csr = parseCsr(Buffer.from(text, 'latin1'));
        assert.ok(csr.der.equals(der));
        assert.deepEqual(csr.dnsNames, [WEB]);
      }
    });

    it('accepts a Uint8Array view into a larger buffer', () => {
      const big = Buffer.concat([Buffer.from([1, 2, 3]), der, Buffer.from([4, 5])]);
      const view = new Uint8Array(big.buffer, big.byteOffset + 3, der.length);
      assert.deepEqual(parseCsr(view).dnsNames, [WEB]);
    });

    it('accepts P-256, P-384 and RSA-2048 CSRs made by openssl', () => {
      const cases = [
        { keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], keyType: 'p256' },
        { keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], keyType: 'p384' },
        { keyArgs: ['-newkey', 'rsa:2048'], keyType: 'rsa2048' },
      ];
      for (const { keyArgs, keyType } of cases) {
        const { csrDer } = opensslCsr({ keyArgs, san: `DNS:${WEB}` });
        const csr = parseCsr(csrDer);
        assert.equal(csr.keyType, keyType);
        assert.deepEqual(csr.dnsNames, [WEB]);
        assert.equal(csr.commonName, undefined);
      }
    });

    it('accepts an openssl CSR signed with SHA-384 and SHA-512', () => {
      for (const digest of ['-sha384', '-sha512']) {
        const { csrDer } = opensslCsr({
          keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', digest],
          san: `DNS:${WEB}`,
        });
        assert.deepEqual(parseCsr(csrDer).dnsNames, [WEB]);
      }
    });

    it('accepts an RSA-2048 CSR and reports its size', async () => {
      const csr = parseCsr((await makeCsr({ key: rsa2048, dns: [WEB] })).der);
      assert.equal(csr.keyType, 'rsa2048');
    });

    it('accepts a hand-built CSR with no attributes in the [0] set', () => {
      const csr = parseCsr(handCsr(p256));
      assert.deepEqual(csr.dnsNames, []);
      assert.equal(csr.keyType, 'p256');
    });

    it(`accepts a CSR of exactly MAX_CSR_BYTES (${MAX_CSR_BYTES}) bytes`, () => {
      let padding = MAX_CSR_BYTES - handCsr(p256).length - 40;
      let csr = handCsr(p256, { attributes: paddingAttributes(padding) });
      for (let i = 0; i < 50 && csr.length !== MAX_CSR_BYTES; i++) {
        padding += MAX_CSR_BYTES - csr.length;
        csr = handCsr(p256, { attributes: paddingAttributes(padding) });
      }
      assert.equal(csr.length, MAX_CSR_BYTES);
      assert.equal(parseCsr(csr).keyType, 'p256');
    });
  });

  describe('names', () => {
    it('extracts DNS, URI, IP and email SANs and the subject CN', async () => {
      const { der: withNames } = await makeCsr({
        dns: [WEB, 'other.example'],
        uris: ['spiffe://cluster.local/ns/default/sa/web'],
        ips: ['10.1.2.3', '2001:db8::1'],
        emails: ['ops@example.com'],
        subject: `CN=${WEB}`,
      });
      const csr = parseCsr(withNames);
      assert.deepEqual(csr.dnsNames, [WEB, 'other.example']);
      assert.deepEqual(csr.uris, ['spiffe://cluster.local/ns/default/sa/web']);
      assert.deepEqual(csr.ipAddresses, ['10.1.2.3', '2001:db8:0:0:0:0:0:1']);
      assert.deepEqual(csr.emails, ['ops@example.com']);
      assert.equal(csr.commonName, WEB);
      assert.equal(csr.otherSubjectAttributes, 0);
      assert.equal(csr.otherNames, 0);
    });

    it('extracts names from an openssl CSR and counts other subject attributes and SAN types', () => {
      const { csrDer } = opensslCsr({
        subj: '/CN=web/O=acme',
        san: 'DNS:a.example,URI:spiffe://x/ns/a/sa/b,IP:10.9.8.7,email:a@b.example,otherName:1.2.3.4;UTF8:hello',
      });
      const csr = parseCsr(csrDer);
      assert.equal(csr.commonName, 'web');
      assert.equal(csr.otherSubjectAttributes, 1);
      assert.deepEqual(csr.dnsNames, ['a.example']);
      assert.deepEqual(csr.uris, ['spiffe://x/ns/a/sa/b']);
      assert.deepEqual(csr.ipAddresses, ['10.9.8.7']);
      assert.deepEqual(csr.emails, ['a@b.example']);
      assert.equal(csr.otherNames, 1);
    });

    it('ignores requested extensions other than subjectAltName', () => {
      const { csrDer } = opensslCsr({
        keyArgs: [
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=keyCertSign',
        ],
        san: `DNS:${WEB}`,
      });
      const csr = parseCsr(csrDer);
      assert.deepEqual(csr.dnsNames, [WEB]);
      assert.deepEqual(csr.uris, []);
    });

    it('reports no names for a CSR without a SAN extension', async () => {
      const csr = parseCsr((await makeCsr({})).der);
      assert.deepEqual(
        [csr.dnsNames, csr.uris, csr.ipAddresses, csr.emails, csr.otherNames],
        [[], [], [], [], 0],
      );
    });
  });

  describe('rejects', () => {
    it('bytes that are not DER with ERR_DER_MALFORMED', () => {
      const garbage = [
        Buffer.from('this is not a certificate request'),
        Buffer.from([0x04, 0x03, 0x01, 0x02, 0x03]),
        Buffer.from([0x30, 0x80, 0x00, 0x00]),
        Buffer.from([0x30, 0x81, 0x05, 0x02, 0x01, 0x00, 0x05, 0x00]),
        Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]),
      ];
      for (const bytes of garbage) {
        assert.throws(() => parseCsr(bytes), { code: 'ERR_DER_MALFORMED' }, bytes.toString('hex'));
      }
    });

    it('a truncated request with ERR_DER_TRUNCATED', () => {
      for (const cut of [1, 10, der.length - 2]) {
        assert.throws(() => parseCsr(der.subarray(0, der.length - cut)), { code: 'ERR_DER_TRUNCATED' });
      }
      assert.throws(() => parseCsr(Buffer.from([0x30])), { code: 'ERR_DER_TRUNCATED' });
    });

    it('bytes after the request with ERR_DER_TRAILING_DATA', () => {
      assert.throws(() => parseCsr(Buffer.concat([der, Buffer.from([0x00])])), {
        code: 'ERR_DER_TRAILING_DATA',
      });
      assert.throws(() => parseCsr(Buffer.concat([der, der])), { code: 'ERR_DER_TRAILING_DATA' });
    });

    it('an empty request with ERR_CSR_MALFORMED', () => {
      assert.throws(() => parseCsr(Buffer.alloc(0)), { code: 'ERR_CSR_MALFORMED' });
    });

    it('PEM with headers with ERR_PEM_HEADERS', () => {
      const pem = encodePem('CERTIFICATE REQUEST', der).replace(
        '-----\n',
        '-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n',
      );
      assert.throws(() => parseCsr(Buffer.from(pem)), { code: 'ERR_PEM_HEADERS' });
    });

    it('PEM of another type with ERR_PEM_UNEXPECTED_TYPE', () => {
      for (const label of ['CERTIFICATE', 'PRIVATE KEY', 'PUBLIC KEY'] as const) {
        assert.throws(() => parseCsr(Buffer.from(encodePem(label, der))), {
          code: 'ERR_PEM_UNEXPECTED_TYPE',
        });
      }
      const both = encodePem('CERTIFICATE REQUEST', der) + encodePem('PRIVATE KEY', der);
      assert.throws(() => parseCsr(Buffer.from(both)), { code: 'ERR_PEM_UNEXPECTED_TYPE' });
    });

    it('broken PEM and PEM with two requests with ERR_PEM_MALFORMED', () => {
      const pem = encodePem('CERTIFICATE REQUEST', der);
      assert.throws(() => parseCsr(Buffer.from(pem.replace('-----END CERTIFICATE REQUEST-----\n', ''))), {
        code: 'ERR_PEM_MALFORMED',
      });
      assert.throws(() => parseCsr(Buffer.from(pem + pem)), { code: 'ERR_PEM_MALFORMED' });
    });

    it('a request whose self-signature does not verify with ERR_CSR_SIGNATURE', async () => {
      assert.throws(() => parseCsr(flipLastByte(der)), { code: 'ERR_CSR_SIGNATURE' });
      const rsa = (await makeCsr({ key: rsa2048, dns: [WEB] })).der;
      assert.throws(() => parseCsr(flipLastByte(rsa)), { code: 'ERR_CSR_SIGNATURE' });
      const { csrDer } = opensslCsr({ san: `DNS:${WEB}` });
      assert.throws(() => parseCsr(flipLastByte(csrDer)), { code: 'ERR_CSR_SIGNATURE' });
    });

    it('a request whose names were altered after signing with ERR_CSR_SIGNATURE', () => {
      const at = der.indexOf(Buffer.from('web.default'));
      assert.ok(at > 0);
      const altered = Buffer.from(der);
      altered.write('bad', at, 'latin1');
      assert.throws(() => parseCsr(altered), { code: 'ERR_CSR_SIGNATURE' });
    });

    it('a request signed by a different key with ERR_CSR_SIGNATURE', () => {
      const other = csrKey('p256');
      const spki = createPublicKey(p256).export({ type: 'spki', format: 'der' });
      const infoDer = seq(smallInteger(0), seq(), spki, tlv(0xa0));
      const forged = seq(infoDer, seq(oid(OID.ecdsaWithSha256)), bitString(sign('sha256', infoDer, other)));
      assert.throws(() => parseCsr(forged), { code: 'ERR_CSR_SIGNATURE' });
    });

    it('an RSA key below 2048 bits with ERR_CSR_WEAK_KEY', async () => {
      const { der: weak } = await makeCsr({ keySpec: 'rsa1024', dns: [WEB] });
      assert.throws(() => parseCsr(weak), { code: 'ERR_CSR_WEAK_KEY' });
    });

    it('P-521 and Ed25519 keys with ERR_CSR_UNSUPPORTED_KEY', async () => {
      const { der: p521 } = await makeCsr({ keySpec: 'p521', dns: [WEB] });
      assert.throws(() => parseCsr(p521), { code: 'ERR_CSR_UNSUPPORTED_KEY' });
      const fromOpenssl = opensslCsr({ keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'] });
      assert.throws(() => parseCsr(fromOpenssl.csrDer), { code: 'ERR_CSR_UNSUPPORTED_KEY' });
      const ed25519 = opensslCsr({ keyArgs: ['-newkey', 'ed25519'], san: `DNS:${WEB}` });
      assert.throws(() => parseCsr(ed25519.csrDer), { code: 'ERR_CSR_UNSUPPORTED_KEY' });
    });

    it('a signature algorithm it does not support with ERR_CSR_UNSUPPORTED_SIGNATURE', () => {
      assert.throws(() => parseCsr(handCsr(p256, { signatureOid: '1.2.840.10045.4.1', hash: 'sha1' })), {
        code: 'ERR_CSR_UNSUPPORTED_SIGNATURE',
      });
      assert.throws(() => parseCsr(handCsr(rsa2048, { signatureOid: OID.rsassaPss })), {
        code: 'ERR_CSR_UNSUPPORTED_SIGNATURE',
      });
    });

    it('signatureAlgorithm parameters other than none (ECDSA) or NULL/none (RSA) with ERR_CSR_MALFORMED', () => {
      const NULL = tlv(0x05);
      assert.throws(() => parseCsr(handCsr(p256, { signatureParams: [NULL] })), {
        code: 'ERR_CSR_MALFORMED',
      });
      const rsa = { signatureOid: OID.sha256WithRsa };
      // found by the fuzz test: NULL (05 00) turned into an end-of-contents (00 00), refused by openssl
      for (const params of [[tlv(0x00)], [NULL, NULL], [tlv(0x05, Buffer.from([0]))], [seq()]]) {
        assert.throws(() => parseCsr(handCsr(rsa2048, { ...rsa, signatureParams: params })), {
          code: 'ERR_CSR_MALFORMED',
        });
      }
      for (const params of [[], [NULL]]) {
        const csr = handCsr(rsa2048, { ...rsa, signatureParams: params });
        assert.equal(parseCsr(csr).keyType, 'rsa2048');
        const r = openssl(['req', '-inform', 'DER', '-verify', '-noout'], { input: csr });
        assert.ok(r.ok, r.stderr);
      }
    });

    it('a signature algorithm that does not match the key type with ERR_CSR_UNSUPPORTED_SIGNATURE', () => {
      assert.throws(() => parseCsr(handCsr(p256, { signatureOid: OID.sha256WithRsa })), {
        code: 'ERR_CSR_UNSUPPORTED_SIGNATURE',
      });
      assert.throws(() => parseCsr(handCsr(rsa2048, { signatureOid: OID.ecdsaWithSha256 })), {
        code: 'ERR_CSR_UNSUPPORTED_SIGNATURE',
      });
    });

    it('a wrong version, missing attributes or an extra top-level part with ERR_CSR_MALFORMED', () => {
      assert.throws(() => parseCsr(handCsr(p256, { version: 1 })), { code: 'ERR_CSR_MALFORMED' });
      assert.throws(() => parseCsr(handCsr(p256, { attributes: null })), { code: 'ERR_CSR_MALFORMED' });
      assert.throws(() => parseCsr(handCsr(p256, { attributes: seq() })), { code: 'ERR_CSR_MALFORMED' });
      assert.throws(() => parseCsr(handCsr(p256, { extraPart: seq() })), { code: 'ERR_CSR_MALFORMED' });
    });

    it('a request over MAX_CSR_BYTES with ERR_CSR_TOO_LARGE, as DER and as PEM', async () => {
      const justOver = handCsr(p256, { attributes: paddingAttributes(MAX_CSR_BYTES) });
      assert.ok(justOver.length > MAX_CSR_BYTES);
      assert.throws(() => parseCsr(justOver), { code: 'ERR_CSR_TOO_LARGE' });
      assert.throws(() => parseCsr(Buffer.from(encodePem('CERTIFICATE REQUEST', justOver))), {
        code: 'ERR_CSR_TOO_LARGE',
      });
      const names = Array.from({ length: 500 }, (_, i) => `name-${i}.${'x'.repeat(30)}.example`);
      const { der: big } = await makeCsr({ dns: names });
      assert.ok(big.length > MAX_CSR_BYTES);
      assert.throws(() => parseCsr(big), { code: 'ERR_CSR_TOO_LARGE' });
      assert.throws(() => parseCsr(Buffer.alloc(10 * MAX_CSR_BYTES, 0x30)), { code: 'ERR_CSR_TOO_LARGE' });
      assert.throws(() => parseCsr(Buffer.from('-'.repeat(3 * MAX_CSR_BYTES))), {
        code: 'ERR_CSR_TOO_LARGE',
      });
    });
  });
});

const NULL = Buffer.from([0x05, 0x00]);

/** A request for WEB with `spki` in it, correctly self-signed by `key` (the shape is all that is odd). */
function signedWithSpki(key: KeyObject, spki: Buffer, hash: 'sha256' = 'sha256'): Buffer {
  const san = seq(implicitPrim(2, Buffer.from(WEB, 'latin1')));
  const attributes = tlv(
    0xa0,
    seq(oid(OID.extensionRequest), tlv(0x31, seq(seq(oid(OID.subjectAltName), octetString(san))))),
  );
  const info = seq(smallInteger(0), seq(), spki, attributes);
  const sigOid = key.asymmetricKeyType === 'ec' ? OID.ecdsaWithSha256 : OID.sha256WithRsa;
  return seq(info, seq(oid(sigOid)), bitString(sign(hash, info, key)));
}

/** The uncompressed point of an EC key (the last bytes of its SPKI). */
function pointOf(key: KeyObject, coordinateBytes: number): Buffer {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return spki.subarray(spki.length - (1 + 2 * coordinateBytes));
}

describe('parseCsr: the SubjectPublicKeyInfo', () => {
  let p256: KeyObject;
  let rsa2048: KeyObject;
  before(() => {
    p256 = csrKey('p256');
    rsa2048 = csrKey('rsa2048');
  });

  it('rejects correctly self-signed CSRs whose SubjectPublicKeyInfo has extra or missing parts', () => {
    const point = pointOf(p256, 32);
    const ecAlg = seq(oid(OID.ecPublicKey), oid(OID.p256));
    const jwk = createPublicKey(rsa2048).export({ format: 'jwk' });
    const n = Buffer.from(jwk.n as string, 'base64url');
    const e = Buffer.from(jwk.e as string, 'base64url');
    const rsaKey = seq(unsignedInteger(n), unsignedInteger(e));
    const shapes: [string, KeyObject, Buffer, string][] = [
      [
        'a NULL after the curve',
        p256,
        seq(seq(oid(OID.ecPublicKey), oid(OID.p256), NULL), bitString(point)),
        'ERR_CSR_MALFORMED',
      ],
      ['a NULL after the key', p256, seq(ecAlg, bitString(point), NULL), 'ERR_CSR_MALFORMED'],
      ['no curve', p256, seq(seq(oid(OID.ecPublicKey)), bitString(point)), 'ERR_CSR_MALFORMED'],
      [
        'NULL for the curve',
        p256,
        seq(seq(oid(OID.ecPublicKey), NULL), bitString(point)),
        'ERR_DER_MALFORMED',
      ],
      ['the key alone', p256, seq(bitString(point)), 'ERR_CSR_MALFORMED'],
      [
        'a point with a byte appended',
        p256,
        seq(ecAlg, bitString(Buffer.concat([point, Buffer.from([0])]))),
        'ERR_CSR_MALFORMED',
      ],
      [
        'a point of the wrong form (0x05)',
        p256,
        seq(ecAlg, bitString(Buffer.concat([Buffer.from([0x05]), point.subarray(1)]))),
        'ERR_CSR_MALFORMED',
      ],
      [
        'a point off the curve',
        p256,
        seq(
          ecAlg,
          bitString(Buffer.concat([point.subarray(0, 64), Buffer.from([(point[64] as number) ^ 1])])),
        ),
        'ERR_CSR_MALFORMED',
      ],
      [
        'a key BIT STRING with unused bits',
        p256,
        seq(ecAlg, tlv(0x03, Buffer.from([0x04]), point)),
        'ERR_DER_MALFORMED',
      ],
      [
        'RSA without the NULL parameters',
        rsa2048,
        seq(seq(oid(OID.rsaEncryption)), bitString(rsaKey)),
        'ERR_CSR_MALFORMED',
      ],
      [
        'RSA with a NULL after the parameters',
        rsa2048,
        seq(seq(oid(OID.rsaEncryption), NULL, NULL), bitString(rsaKey)),
        'ERR_CSR_MALFORMED',
      ],
      [
        'RSA with a NULL after the key',
        rsa2048,
        seq(seq(oid(OID.rsaEncryption), NULL), bitString(rsaKey), NULL),
        'ERR_CSR_MALFORMED',
      ],
      [
        'an RSA key with a third INTEGER',
        rsa2048,
        seq(
          seq(oid(OID.rsaEncryption), NULL),
          bitString(seq(unsignedInteger(n), unsignedInteger(e), unsignedInteger(e))),
        ),
        'ERR_CSR_MALFORMED',
      ],
    ];
    for (const [name, key, spki, code] of shapes) {
      assert.throws(() => parseCsr(signedWithSpki(key, spki)), { code }, name);
      assert.throws(
        () => parseCsrLenient(signedWithSpki(key, spki), P256_ONLY),
        { code },
        `${name} (lenient)`,
      );
    }
  });

  it('refuses a compressed EC point with ERR_CSR_UNSUPPORTED_KEY', () => {
    const point = pointOf(p256, 32);
    const compressed = Buffer.concat([
      Buffer.from([0x02 | ((point[64] as number) & 1)]),
      point.subarray(1, 33),
    ]);
    const csr = signedWithSpki(p256, seq(seq(oid(OID.ecPublicKey), oid(OID.p256)), bitString(compressed)));
    assert.throws(() => parseCsr(csr), { code: 'ERR_CSR_UNSUPPORTED_KEY' });
  });

  it('refuses explicit EC curve parameters (openssl ec_param_enc:explicit) with ERR_CSR_UNSUPPORTED_KEY', () => {
    const { csrDer } = opensslCsr({
      keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:explicit'],
      san: `DNS:${WEB}`,
    });
    assert.throws(() => parseCsr(csrDer), { code: 'ERR_CSR_UNSUPPORTED_KEY' });
  });

  it('returns the canonical SPKI encoding of P-256, P-384 and RSA keys made by node:crypto', () => {
    for (const spec of ['p256', 'p384', 'p256', 'p384', 'p256', 'p384'] as const) {
      const key = csrKey(spec);
      const canonical = createPublicKey(key).export({ type: 'spki', format: 'der' });
      const csr = parseCsr(handCsr(key));
      assert.ok(csr.spki.equals(canonical), spec);
    }
    const rsa = parseCsr(handCsr(rsa2048, { signatureOid: OID.sha256WithRsa }));
    assert.ok(rsa.spki.equals(createPublicKey(rsa2048).export({ type: 'spki', format: 'der' })));
  });

  it("keeps compact copies: nothing it returns refers to the caller's buffer", async () => {
    const der = (await makeCsr({ key: p256, dns: [WEB] })).der;
    const request = Buffer.alloc(64 * 1024);
    der.copy(request, 1000);
    const csr = parseCsr(request.subarray(1000, 1000 + der.length));
    for (const b of [csr.der, csr.spki]) {
      assert.notEqual(b.buffer, request.buffer);
      assert.ok(b.buffer.byteLength < 1024, `${b.buffer.byteLength} bytes retained`);
    }
    assert.ok(csr.der.equals(der));
    request.fill(0);
    assert.ok(csr.der.equals(der), "changing the caller's buffer changed the parsed request");
  });
});

describe('parseCsrLenient', () => {
  it('returns a refused key with its names and error instead of throwing (P-521, Ed25519, RSA-1024)', async () => {
    const cases: [Buffer, string][] = [
      [(await makeCsr({ keySpec: 'p521', dns: [WEB] })).der, 'ERR_CSR_UNSUPPORTED_KEY'],
      [opensslCsr({ keyArgs: ['-newkey', 'ed25519'], san: `DNS:${WEB}` }).csrDer, 'ERR_CSR_UNSUPPORTED_KEY'],
      [(await makeCsr({ keySpec: 'rsa1024', dns: [WEB] })).der, 'ERR_CSR_WEAK_KEY'],
    ];
    for (const [der, code] of cases) {
      assert.throws(() => parseCsr(der), { code });
      const csr = parseCsrLenient(der, P256_ONLY);
      assert.equal(csr.keyType, 'unsupported');
      assert.equal(csr.keyType === 'unsupported' ? csr.keyError.code : undefined, code);
      assert.deepEqual(csr.dnsNames, [WEB]);
      assert.equal('spki' in csr, false, 'a refused key carries nothing a leaf could be signed with');
    }
  });

  it('does not ask a refused key for proof of possession, but still does for an accepted one', async () => {
    const p521 = (await makeCsr({ keySpec: 'p521', dns: [WEB] })).der;
    const badSig = flipLastByte(p521);
    assert.throws(() => parseCsr(badSig), { code: 'ERR_CSR_UNSUPPORTED_KEY' });
    assert.equal(parseCsrLenient(badSig, P256_ONLY).keyType, 'unsupported');
    const p256 = (await makeCsr({ dns: [WEB] })).der;
    assert.throws(() => parseCsrLenient(flipLastByte(p256), P256_ONLY), { code: 'ERR_CSR_SIGNATURE' });
    assert.equal(parseCsrLenient(p256, P256_ONLY).keyType, 'p256');
  });

  it('still rejects a malformed request around a refused key', async () => {
    const p521 = (await makeCsr({ keySpec: 'p521', dns: [WEB] })).der;
    assert.throws(() => parseCsrLenient(p521.subarray(0, p521.length - 3), P256_ONLY), {
      code: 'ERR_DER_TRUNCATED',
    });
    assert.throws(() => parseCsrLenient(Buffer.concat([p521, Buffer.from([0])]), P256_ONLY), {
      code: 'ERR_DER_TRAILING_DATA',
    });
  });
});

describe('parseCsr: RSA keys are bounded before anything is verified with them', () => {
  const E65537 = Buffer.from([0x01, 0x00, 0x01]);
  /** a big-endian number of exactly `bits` bits, odd */
  const odd = (bits: number): Buffer => {
    const b = Buffer.alloc(Math.ceil(bits / 8), 0x5a);
    b[0] = 1 << ((bits - 1) % 8);
    b[b.length - 1] = 0x01;
    return b;
  };

  it('refuses, with ERR_CSR_UNSUPPORTED_KEY, a modulus over MAX_RSA_BITS or an exponent over MAX_RSA_EXPONENT_BITS', () => {
    // the signatures are random: a verification would answer ERR_CSR_SIGNATURE
    const cases: [string, Buffer][] = [
      ['RSA-16384 with a 64-bit exponent', rsaCsr(16384, odd(64), WEB)],
      ['RSA-3072 with a 3072-bit exponent', rsaCsr(3072, odd(3072), WEB)],
      [`RSA-${MAX_RSA_BITS + 1}`, rsaCsr(MAX_RSA_BITS + 1, E65537, WEB)],
      [
        `RSA-2048 with a ${MAX_RSA_EXPONENT_BITS + 1}-bit exponent`,
        rsaCsr(2048, odd(MAX_RSA_EXPONENT_BITS + 1), WEB),
      ],
    ];
    for (const [name, der] of cases) {
      assert.throws(() => parseCsr(der), { code: 'ERR_CSR_UNSUPPORTED_KEY' }, name);
      assert.throws(
        () => inspectBytes(der, new Date(0)),
        { code: 'ERR_CSR_UNSUPPORTED_KEY' },
        `${name} (inspect)`,
      );
    }
  });

  it('verifies a key at the bounds (a random signature: ERR_CSR_SIGNATURE; a real one: accepted)', () => {
    assert.throws(() => parseCsr(rsaCsr(MAX_RSA_BITS, E65537, WEB)), { code: 'ERR_CSR_SIGNATURE' });
    assert.throws(() => parseCsr(rsaCsr(2048, odd(MAX_RSA_EXPONENT_BITS), WEB)), {
      code: 'ERR_CSR_SIGNATURE',
    });
    const key = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 2 ** 32 - 1 }).privateKey;
    assert.equal(parseCsr(handCsr(key, { signatureOid: OID.sha256WithRsa })).keyType, 'rsa2048');
  });

  it('rejects an exponent below 3 or even, and an even modulus, as ERR_CSR_MALFORMED', () => {
    const even = odd(2048);
    even[even.length - 1] = 0x02;
    for (const [name, der] of [
      ['e = 1', rsaCsr(2048, Buffer.from([1]), WEB)],
      ['e = 65536', rsaCsr(2048, Buffer.from([1, 0, 0]), WEB)],
    ] as const) {
      assert.throws(() => parseCsr(der), { code: 'ERR_CSR_MALFORMED' }, name);
    }
    const spki = seq(
      seq(oid(OID.rsaEncryption), NULL),
      bitString(seq(unsignedInteger(even), unsignedInteger(E65537))),
    );
    assert.throws(() => parseCsr(signedWithSpki(csrKey('rsa2048'), spki)), { code: 'ERR_CSR_MALFORMED' });
  });
});

describe('parseCsrLenient: a key the policy refuses is refused without verifying anything', () => {
  const P256_P384 = { allowedKeyTypes: ['p256', 'p384'] as const };

  it('returns ERR_KEY_NOT_ALLOWED, not ERR_CSR_SIGNATURE, for a P-384 or RSA-4096 key whose signature does not verify', () => {
    const p384 = withBadSignature(signedCsr(csrKey('p384'), WEB));
    const rsa4096 = rsaCsr(4096, Buffer.from([1, 0, 1]), WEB);
    for (const [name, der] of [
      ['P-384', p384],
      ['RSA-4096', rsa4096],
    ] as const) {
      const csr = parseCsrLenient(der, P256_ONLY);
      assert.equal(csr.keyType, 'unsupported', name);
      assert.equal(
        csr.keyType === 'unsupported' ? csr.keyError.code : undefined,
        'ERR_KEY_NOT_ALLOWED',
        name,
      );
      assert.deepEqual(csr.dnsNames, [WEB]);
    }
    // the same P-384 request under a policy that allows P-384 is verified
    assert.throws(() => parseCsrLenient(p384, P256_P384), { code: 'ERR_CSR_SIGNATURE' });
  });

  it('does not import a refused key: a P-384 point off the curve is the key refusal, not ERR_CSR_MALFORMED', () => {
    const spki = createPublicKey(csrKey('p384')).export({ type: 'spki', format: 'der' });
    spki[spki.length - 1] = (spki[spki.length - 1] as number) ^ 0x01;
    const der = signedWithSpki(csrKey('p256'), spki);
    const csr = parseCsrLenient(der, P256_ONLY);
    assert.equal(csr.keyType === 'unsupported' ? csr.keyError.code : undefined, 'ERR_KEY_NOT_ALLOWED');
    assert.throws(() => parseCsrLenient(der, P256_P384), { code: 'ERR_CSR_MALFORMED' });
  });

  it('judges RSA bounds before the policy: RSA-16384 with a huge exponent is ERR_CSR_UNSUPPORTED_KEY', () => {
    const csr = parseCsrLenient(hostileCsr('rsa16384-e64', WEB), P256_ONLY);
    assert.equal(csr.keyType === 'unsupported' ? csr.keyError.code : undefined, 'ERR_CSR_UNSUPPORTED_KEY');
  });
});
