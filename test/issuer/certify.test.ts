import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  LanyardError,
  parseCertificate,
  type IssuerCredential,
  type LeafPolicy,
  type LenientCsr,
} from '../../ca/index.js';
import { children, readRoot, whole, type Tlv } from '../../ca/der/index.js';
import { createCertifier, type CertifyResult } from '../../issuer/certify.js';
import { createRenewalCaches } from '../../issuer/renewal-cache.js';
import { createStaticCredentialSource } from '../../issuer/credentials.js';
import { toGrpcError, statusName } from '../../issuer/grpc/status.js';
import { createIssuanceLedger, issuanceObserver } from '../../issuer/ledger.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { hostileCsr, signedCsr, withBadSignature } from '../support/hostile-csr.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { opensslCsr, opensslText, opensslVerify } from '../support/openssl.js';
import { csrKey, makeCsr, testPki, type CsrKeySpec } from '../support/pki.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const signal = new AbortController().signal;

async function setup(
  mutate?: (c: IssuerCredential) => IssuerCredential,
  options: { policy?: LeafPolicy } = {},
) {
  const clock = new FakeClock('2026-06-01T00:00:00Z');
  const pki = await testPki({ now: clock.now(), issuerLifetimeMs: 48 * HOUR });
  const cred = pki.issuers.east?.credential as IssuerCredential;
  const ledger = createIssuanceLedger();
  const authenticator = scriptedAuthenticator();
  const parsed: LenientCsr[] = [];
  const certify = createCertifier({
    clock,
    credentials: createStaticCredentialSource(mutate ? mutate(cred) : cred),
    authenticator,
    policy: options.policy ?? DEFAULT_LEAF_POLICY,
    domain: DEFAULT_IDENTITY_DOMAIN,
    onIssued: issuanceObserver(ledger),
    onCsrParsed: (c) => parsed.push(c),
  });
  const csr = (await makeCsr({ dns: [ID] })).der;
  return { clock, pki, certify, ledger, csr, authenticator, parsed };
}

async function errorOf(p: Promise<unknown>): Promise<LanyardError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof LanyardError, `not a LanyardError: ${String(err)}`);
    return err;
  }
  assert.fail('the call succeeded');
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    assert.ok(err instanceof LanyardError, `not a LanyardError: ${String(err)}`);
    return err.code;
  }
}

describe('certify (use case)', () => {
  it('returns nothing and fails INTERNAL when the new leaf does not verify against the anchors', async () => {
    const { certify, csr } = await setup((c) => ({
      ...c,
      verifier: {
        ...c.verifier,
        verify() {
          throw new LanyardError('ERR_CHAIN_UNTRUSTED', 'simulated verification failure');
        },
        verifyIssued() {
          throw new LanyardError('ERR_CHAIN_UNTRUSTED', 'simulated verification failure');
        },
      },
    }));
    let caught: unknown;
    try {
      await certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal });
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof LanyardError);
    assert.equal(caught.code, 'ERR_INTERNAL');
    const mapped = toGrpcError(caught);
    assert.equal(statusName(mapped.grpcCode), 'INTERNAL');
  });

  it('answers ERR_ISSUER_UNAVAILABLE once the issuer has expired', async () => {
    const { certify, clock, csr } = await setup();
    clock.advance(49 * HOUR);
    assert.equal(
      await codeOf(certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal })),
      'ERR_ISSUER_UNAVAILABLE',
    );
  });

  it('caps the leaf at the issuer expiry and records the latest notAfter per anchor', async () => {
    const { certify, clock, csr, ledger, pki } = await setup();
    clock.advance(40 * HOUR);
    const r = await certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal });
    assert.equal(r.leaf.notAfter.getTime(), pki.issuers.east?.cert.notAfter.getTime());
    const snap = ledger.snapshot();
    assert.equal(snap.length, 1);
    assert.equal(snap[0]?.issued, 1);
    assert.equal(snap[0]?.latestNotAfter, r.leaf.notAfter.toISOString());
  });

  it('maps every failure of the sequence to its gRPC status', () => {
    const cases: [LanyardError['code'], string][] = [
      ['ERR_ISSUER_UNAVAILABLE', 'UNAVAILABLE'],
      ['ERR_INVALID_REQUEST', 'INVALID_ARGUMENT'],
      ['ERR_CSR_SIGNATURE', 'INVALID_ARGUMENT'],
      ['ERR_CSR_NAMES', 'PERMISSION_DENIED'],
      ['ERR_TOKEN_INVALID', 'UNAUTHENTICATED'],
      ['ERR_AUTHENTICATOR_UNAVAILABLE', 'UNAVAILABLE'],
      ['ERR_IDENTITY_MISMATCH', 'PERMISSION_DENIED'],
      ['ERR_KEY_NOT_ALLOWED', 'PERMISSION_DENIED'],
      ['ERR_OVERLOADED', 'RESOURCE_EXHAUSTED'],
      ['ERR_INTERNAL', 'INTERNAL'],
    ];
    for (const [code, grpcName] of cases) {
      assert.equal(statusName(toGrpcError(new LanyardError(code, 'x')).grpcCode), grpcName, code);
    }
    assert.equal(statusName(toGrpcError(new Error('boom')).grpcCode), 'INTERNAL');
  });

  describe('a key the CA refuses is judged after the token and the identity', () => {
    const refused: [string, () => Promise<Buffer>, string][] = [
      ['P-521', async () => (await makeCsr({ keySpec: 'p521', dns: [ID] })).der, 'ERR_CSR_UNSUPPORTED_KEY'],
      [
        'Ed25519',
        () => Promise.resolve(opensslCsr({ keyArgs: ['-newkey', 'ed25519'], san: `DNS:${ID}` }).csrDer),
        'ERR_CSR_UNSUPPORTED_KEY',
      ],
      ['RSA-1024', async () => (await makeCsr({ keySpec: 'rsa1024', dns: [ID] })).der, 'ERR_CSR_WEAK_KEY'],
      // issue 11 #4: keys an unauthenticated caller could make the server verify at length; each
      // signature here does not verify, so ERR_CSR_SIGNATURE would mean it was checked
      [
        'P-384 under a P-256-only policy, with a signature that does not verify',
        () => Promise.resolve(withBadSignature(signedCsr(csrKey('p384'), ID))),
        'ERR_KEY_NOT_ALLOWED',
      ],
      [
        'RSA-4096, with a signature that does not verify',
        () => Promise.resolve(hostileCsr('rsa4096', ID)),
        'ERR_KEY_NOT_ALLOWED',
      ],
      [
        'RSA-16384 with a 64-bit exponent',
        () => Promise.resolve(hostileCsr('rsa16384-e64', ID)),
        'ERR_CSR_UNSUPPORTED_KEY',
      ],
      [
        'RSA-3072 with a 3072-bit exponent',
        () => Promise.resolve(hostileCsr('rsa3072-e3072', ID)),
        'ERR_CSR_UNSUPPORTED_KEY',
      ],
    ];
    for (const [name, makeDer, code] of refused) {
      it(`${name}: UNAUTHENTICATED with a bad token, PERMISSION_DENIED (${code}) with a good one`, async () => {
        const { certify, authenticator } = await setup();
        const csr = await makeDer();
        const bad = await errorOf(certify({ identity: ID, token: Buffer.from('junk'), csr }, { signal }));
        assert.equal(bad.code, 'ERR_TOKEN_INVALID');
        assert.equal(statusName(toGrpcError(bad).grpcCode), 'UNAUTHENTICATED');
        const other = await errorOf(
          certify({ identity: ID, token: Buffer.from('sa:default:db'), csr }, { signal }),
        );
        assert.equal(other.code, 'ERR_IDENTITY_MISMATCH');
        const good = await errorOf(
          certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal }),
        );
        assert.equal(good.code, code);
        assert.equal(statusName(toGrpcError(good).grpcCode), 'PERMISSION_DENIED');
        assert.equal(authenticator.calls, 3);
      });
    }

    it('still checks the names before the token', async () => {
      const { certify, authenticator } = await setup();
      const csr = (await makeCsr({ keySpec: 'p521', dns: ['db.default.svc'] })).der;
      const err = await errorOf(certify({ identity: ID, token: Buffer.from('junk'), csr }, { signal }));
      assert.equal(err.code, 'ERR_CSR_NAMES');
      assert.equal(authenticator.calls, 0);
    });
  });

  describe('the CSR cache', () => {
    it('keeps no CSR of a caller whose token or identity failed', async () => {
      const { certify, csr, parsed } = await setup();
      for (let i = 0; i < 3; i++) {
        const err = await errorOf(certify({ identity: ID, token: Buffer.from('junk'), csr }, { signal }));
        assert.equal(err.code, 'ERR_TOKEN_INVALID');
        const mismatch = await errorOf(
          certify({ identity: ID, token: Buffer.from('sa:default:db'), csr }, { signal }),
        );
        assert.equal(mismatch.code, 'ERR_IDENTITY_MISMATCH');
      }
      assert.equal(parsed.length, 6, 'every unauthenticated call parsed the CSR afresh');
    });

    it('keeps the CSR of an authenticated caller for its renewals', async () => {
      const { certify, csr, parsed } = await setup();
      await certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal });
      await certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal });
      await certify(
        { identity: ID, token: Buffer.from('sa:default:web'), csr: Buffer.from(csr) },
        { signal },
      );
      assert.equal(parsed.length, 1);
    });

    it('renews from the cache a leaf byte-identical to a fresh one apart from serial and validity', async () => {
      const { clock, pki, certify, csr, parsed } = await setup();
      const token = Buffer.from('sa:default:web');
      const fresh = await certify({ identity: ID, token, csr }, { signal });
      clock.advance(60_000);
      const renewed = await certify({ identity: ID, token, csr }, { signal });
      assert.equal(parsed.length, 1, 'the renewal came from the cache');
      const tbsParts = (der: Buffer): string[] =>
        children(children(readRoot(der))[0] as Tlv).map((t) => whole(t).toString('hex'));
      const [a, b] = [tbsParts(fresh.leaf.der), tbsParts(renewed.leaf.der)];
      assert.equal(a.length, 8);
      assert.notEqual(a[1], b[1], 'a new serial');
      assert.notEqual(a[4], b[4], 'a new validity');
      // version, signature algorithm, issuer, subject, SPKI and every extension (the SKI among them)
      for (const i of [0, 2, 3, 5, 6, 7]) assert.equal(b[i], a[i], `TBSCertificate field ${i}`);
      const v = opensslVerify({
        leaf: renewed.leaf.der,
        intermediates: renewed.leaf.intermediates,
        anchors: [pki.anchor.cert.der],
        purpose: 'sslclient',
        atSeconds: Math.floor(clock.now().getTime() / 1000),
      });
      assert.ok(v.ok, v.stderr);
    });

    it('answers a cached CSR asked for another identity as a fresh one, and counts hits and misses', async () => {
      const base = await setup();
      const caches = createRenewalCaches();
      const certify = createCertifier({
        clock: base.clock,
        credentials: createStaticCredentialSource(base.pki.issuers.east?.credential),
        authenticator: base.authenticator,
        policy: DEFAULT_LEAF_POLICY,
        domain: DEFAULT_IDENTITY_DOMAIN,
        csrCache: caches.csr,
      });
      const other = 'db.default.serviceaccount.identity.linkerd.cluster.local';
      const token = Buffer.from('sa:default:web');
      const cold = await errorOf(certify({ identity: other, token, csr: base.csr }, { signal }));
      await certify({ identity: ID, token, csr: base.csr }, { signal });
      const cached = await errorOf(certify({ identity: other, token, csr: base.csr }, { signal }));
      assert.equal(cached.code, 'ERR_CSR_NAMES');
      assert.equal(cached.message, cold.message);
      await certify({ identity: ID, token, csr: base.csr }, { signal });
      assert.deepEqual(
        { hits: caches.csr.hits, misses: caches.csr.misses, size: caches.csr.size },
        { hits: 2, misses: 2, size: 1 },
      );
    });

    it('keeps a compact copy of the CSR, not the request buffer it arrived in', async () => {
      const { certify, csr, parsed } = await setup();
      const request = Buffer.alloc(60 * 1024);
      csr.copy(request, 30_000);
      await certify(
        {
          identity: ID,
          token: Buffer.from('sa:default:web'),
          csr: request.subarray(30_000, 30_000 + csr.length),
        },
        { signal },
      );
      const kept = parsed[0];
      assert.ok(kept !== undefined && kept.keyType !== 'unsupported');
      for (const b of [kept.der, kept.spki]) {
        assert.notEqual(b.buffer, request.buffer);
        assert.ok(b.buffer.byteLength < 1024, `${b.buffer.byteLength} bytes retained`);
      }
    });
  });

  it('puts the canonical SPKI of each P-256 and P-384 key into its leaf', async () => {
    const { certify, pki } = await setup(undefined, {
      policy: { ...DEFAULT_LEAF_POLICY, allowedKeyTypes: ['p256', 'p384'] },
    });
    const specs: CsrKeySpec[] = ['p256', 'p384', 'p256', 'p384', 'p256', 'p384', 'p256', 'p384'];
    for (const [i, spec] of specs.entries()) {
      const key = csrKey(spec);
      const canonical = createPublicKey(key).export({ type: 'spki', format: 'der' });
      const csr = (await makeCsr({ key, dns: [ID] })).der;
      const r = await certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal });
      assert.ok(parseCertificate(r.leaf.der).spki.equals(canonical), spec);
      if (i < 2) {
        assert.match(opensslText(r.leaf.der), spec === 'p256' ? /prime256v1|P-256/ : /secp384r1|P-384/);
        const v = opensslVerify({
          leaf: r.leaf.der,
          intermediates: r.leaf.intermediates,
          anchors: [pki.anchor.cert.der],
          purpose: 'sslclient',
          atSeconds: Math.floor(new Date('2026-06-01T00:00:00Z').getTime() / 1000),
        });
        assert.ok(v.ok, v.stderr);
      }
    }
  });

  it('keeps caller-supplied identities out of its messages beyond a short, escaped quote', async () => {
    const { certify, csr } = await setup();
    const names = await errorOf(
      certify({ identity: 'x'.repeat(50_000), token: Buffer.from('sa:default:web'), csr }, { signal }),
    );
    assert.equal(names.code, 'ERR_CSR_NAMES');
    assert.ok(names.message.length < 1024, `a message of ${names.message.length} characters`);
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}`.repeat(10);
    const longCsr = (await makeCsr({ dns: [long] })).der;
    const mismatch = await errorOf(
      certify({ identity: long, token: Buffer.from('sa:default:web'), csr: longCsr }, { signal }),
    );
    assert.equal(mismatch.code, 'ERR_IDENTITY_MISMATCH');
    assert.ok(mismatch.message.length < 1024, `a message of ${mismatch.message.length} characters`);
  });
});

describe('certify (the stages of one call)', () => {
  async function counted() {
    const s = await setup();
    let clockReads = 0;
    let credentialReads = 0;
    const issued: CertifyResult[] = [];
    const cred = s.pki.issuers.east?.credential as IssuerCredential;
    const certify = createCertifier({
      clock: {
        now: () => {
          clockReads++;
          return s.clock.now();
        },
      },
      credentials: {
        ...createStaticCredentialSource(cred),
        current: () => {
          credentialReads++;
          return cred;
        },
      },
      authenticator: s.authenticator,
      policy: DEFAULT_LEAF_POLICY,
      domain: DEFAULT_IDENTITY_DOMAIN,
      onIssued: (r) => issued.push(r),
    });
    return {
      ...s,
      certify,
      issued,
      reads: () => ({ clock: clockReads, credential: credentialReads }),
    };
  }

  it('reads the clock and the credential once per call, issued or refused', async () => {
    const { certify, csr, reads } = await counted();
    await certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal });
    assert.deepEqual(reads(), { clock: 1, credential: 1 });
    await errorOf(certify({ identity: ID, token: Buffer.from('junk'), csr }, { signal }));
    assert.deepEqual(reads(), { clock: 2, credential: 2 });
  });

  it('tells the onIssued observer of each leaf it returns, and of nothing it refused', async () => {
    const { certify, csr, issued } = await counted();
    const r = await certify({ identity: ID, token: Buffer.from('sa:default:web'), csr }, { signal });
    await errorOf(certify({ identity: ID, token: Buffer.from('sa:default:db'), csr }, { signal }));
    await errorOf(certify({ identity: ID, token: Buffer.from('junk'), csr }, { signal }));
    assert.equal(issued.length, 1);
    assert.equal(issued[0], r);
  });

  it('answers ERR_ISSUER_UNAVAILABLE before anything else when no credential is loaded', async () => {
    const { authenticator, csr } = await setup();
    const certify = createCertifier({
      clock: new FakeClock(),
      credentials: createStaticCredentialSource(undefined),
      authenticator,
      policy: DEFAULT_LEAF_POLICY,
      domain: DEFAULT_IDENTITY_DOMAIN,
    });
    const err = await errorOf(certify({ identity: '', token: Buffer.alloc(0), csr }, { signal }));
    assert.equal(err.code, 'ERR_ISSUER_UNAVAILABLE');
    assert.equal(authenticator.calls, 0);
  });

  it('checks the fields before reading the CSR, and the CSR before the token', async () => {
    const { certify, authenticator, csr, parsed } = await setup();
    const missing = await errorOf(certify({ identity: ID, token: Buffer.alloc(0), csr }, { signal }));
    assert.equal(missing.code, 'ERR_INVALID_REQUEST');
    assert.equal(parsed.length, 0);
    const flipped = Buffer.from(csr);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
    const bad = await errorOf(
      certify({ identity: ID, token: Buffer.from('sa:default:web'), csr: flipped }, { signal }),
    );
    assert.equal(bad.code, 'ERR_CSR_SIGNATURE');
    assert.equal(authenticator.calls, 0);
  });
});
