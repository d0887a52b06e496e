import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  authorizeLeaf,
  issueLeaf,
  parseCertificate,
  parseCsrLenient,
  requestLeaf,
  snapshotIssuer,
  workloadIdentity,
  type AuthorizedLeafRequest,
  type IssuerCredential,
  type LeafPolicy,
  type ParsedCsr,
} from '../../ca/index.js';
import { judgeCsrKey } from '../../ca/policy.js';
import { parseCsr } from '../../ca/csr.js';
import { AuthorizedLeafRequest as AuthorizedLeafRequestClass, LeafRequestNames } from '../../ca/policy.js';
import { IssuerSnapshot } from '../../ca/credential.js';
import { HOUR } from '../support/clock.js';
import { csrKey, makeCsr, testPki } from '../support/pki.js';
import { signedCsr, withBadSignature } from '../support/hostile-csr.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });
const DB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'db' });
const P256_P384: LeafPolicy = { ...DEFAULT_LEAF_POLICY, allowedKeyTypes: ['p256', 'p384'] };

/** A constructor called the way code outside its module would have to (without the module's key). */
type AnyConstructor = new (...args: unknown[]) => unknown;

describe('the Certify stages (ca)', () => {
  let cred: IssuerCredential;
  let csr: ParsedCsr;
  before(async () => {
    const pki = await testPki({ now: NOW, issuerLifetimeMs: 48 * HOUR });
    cred = pki.issuers.east?.credential as IssuerCredential;
    csr = parseCsr((await makeCsr({ dns: [WEB.dns] })).der);
  });

  const authorized = (identity = WEB, policy = DEFAULT_LEAF_POLICY): AuthorizedLeafRequest =>
    authorizeLeaf(requestLeaf(judgeCsrKey(csr, policy), identity.dns), identity, policy);

  describe('snapshotIssuer', () => {
    it('refuses with ERR_ISSUER_UNAVAILABLE when no credential is loaded', () => {
      assert.throws(() => snapshotIssuer(undefined, NOW), { code: 'ERR_ISSUER_UNAVAILABLE' });
    });

    it('refuses with ERR_ISSUER_UNAVAILABLE from the instant the chain expires, and not before', () => {
      const last = new Date(cred.chainNotAfter.getTime() - 1);
      assert.equal(snapshotIssuer(cred, last).now, last);
      assert.throws(() => snapshotIssuer(cred, cred.chainNotAfter), { code: 'ERR_ISSUER_UNAVAILABLE' });
    });

    it('cannot be built except by snapshotIssuer', () => {
      assert.throws(
        () => new (IssuerSnapshot as unknown as AnyConstructor)(Symbol('x'), cred, NOW),
        TypeError,
      );
    });
  });

  describe('requestLeaf (authorization before the token)', () => {
    it('refuses a CSR that does not ask for exactly the requested identity with ERR_CSR_NAMES', () => {
      assert.throws(() => requestLeaf(judgeCsrKey(csr, DEFAULT_LEAF_POLICY), DB.dns), {
        code: 'ERR_CSR_NAMES',
      });
    });

    it('checks the names even of a CSR whose key will be refused', async () => {
      const p521 = parseCsrLenient(
        (await makeCsr({ keySpec: 'p521', dns: [WEB.dns] })).der,
        DEFAULT_LEAF_POLICY,
      );
      assert.equal(p521.keyType, 'unsupported');
      assert.throws(() => requestLeaf(p521, DB.dns), { code: 'ERR_CSR_NAMES' });
      assert.equal(requestLeaf(p521, WEB.dns).requested, WEB.dns);
    });

    it('cannot be built except by requestLeaf', () => {
      assert.throws(
        () => new (LeafRequestNames as unknown as AnyConstructor)(Symbol('x'), WEB.dns, csr),
        TypeError,
      );
    });
  });

  describe('authorizeLeaf (authorization once the caller is known)', () => {
    it('refuses an identity other than the requested one with ERR_IDENTITY_MISMATCH, before judging the key', () => {
      const p384 = judgeCsrKey({ ...csr, keyType: 'p384' }, DEFAULT_LEAF_POLICY);
      const request = requestLeaf(p384, WEB.dns);
      assert.throws(() => authorizeLeaf(request, DB, DEFAULT_LEAF_POLICY), { code: 'ERR_IDENTITY_MISMATCH' });
      assert.throws(() => authorizeLeaf(request, WEB, DEFAULT_LEAF_POLICY), { code: 'ERR_KEY_NOT_ALLOWED' });
    });

    it('reports the key judged when the CSR was read, without verifying its signature', () => {
      const badSignature = withBadSignature(signedCsr(csrKey('p384'), WEB.dns));
      const lenient = parseCsrLenient(badSignature, DEFAULT_LEAF_POLICY);
      assert.throws(() => authorizeLeaf(requestLeaf(lenient, WEB.dns), WEB, DEFAULT_LEAF_POLICY), {
        code: 'ERR_KEY_NOT_ALLOWED',
      });
    });

    it('keeps only the key from the CSR: its canonical SPKI, its allowed type, the identity and the policy', () => {
      const a = authorized(WEB, P256_P384);
      assert.ok(a instanceof AuthorizedLeafRequestClass);
      assert.ok(a.spki.equals(csr.spki));
      assert.equal(a.keyType, 'p256');
      assert.equal(a.identity, WEB);
      assert.equal(a.policy, P256_P384);
    });

    it('cannot be built except by authorizeLeaf', () => {
      assert.throws(
        () =>
          new (AuthorizedLeafRequestClass as unknown as AnyConstructor)(
            Symbol('x'),
            csr.spki,
            'p256',
            WEB,
            DEFAULT_LEAF_POLICY,
          ),
        TypeError,
      );
      // a type-level check (npm run typecheck): an object of the same shape is not an authorized request
      const forged = { spki: csr.spki, keyType: 'p256', identity: WEB, policy: DEFAULT_LEAF_POLICY } as const;
      /* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- the point of the test */
      // @ts-expect-error the issuing function takes only what authorizeLeaf built
      const issueForged = (): unknown => issueLeaf(snapshotIssuer(cred, NOW), forged);
      /* eslint-enable @typescript-eslint/no-unsafe-class-instance-assignment */
      assert.equal(typeof issueForged, 'function');
    });
  });

  describe('issueLeaf (issue, then verify)', () => {
    it('takes its instant from the snapshot (the clock is not read again) and clamps the leaf to the chain', () => {
      const at = new Date(cred.chainNotAfter.getTime() - HOUR);
      const leaf = issueLeaf(snapshotIssuer(cred, at), authorized());
      assert.equal(leaf.notBefore.getTime(), at.getTime() - DEFAULT_LEAF_POLICY.clockSkewMs);
      assert.deepEqual(leaf.notAfter, cred.chainNotAfter);
      const parsed = parseCertificate(leaf.der);
      assert.deepEqual(parsed.dnsNames, [WEB.dns]);
      assert.deepEqual(parsed.uris, [WEB.spiffeId]);
      assert.ok(parsed.spki.equals(csr.spki));
    });

    it('returns nothing and fails ERR_INTERNAL when the new leaf does not verify', () => {
      const broken: IssuerCredential = {
        ...cred,
        verifier: {
          ...cred.verifier,
          verifyIssued() {
            throw new Error('simulated');
          },
        },
      };
      assert.throws(() => issueLeaf(snapshotIssuer(broken, NOW), authorized()), { code: 'ERR_INTERNAL' });
    });
  });
});
