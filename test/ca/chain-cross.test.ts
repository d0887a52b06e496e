// Path building over a pool with cross certificates (ca/chain.ts): anchors before same-subject
// intermediates, backtracking out of dead ends, and a bounded number of signature checks.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  createChainVerifier,
  createIssuerCredential,
  fingerprint,
  parseCertificate,
  workloadIdentity,
  type CertificateInfo,
} from '../../ca/index.js';
import { issueForCsr } from '../../ca/credential.js';
import { parseCsr } from '../../ca/csr.js';
import { DAY } from '../support/clock.js';
import {
  crossCertificate,
  crossOf,
  defaultCrossPki,
  testAnchor,
  type CrossPki,
  type TestAnchor,
} from '../support/cross-pki.js';
import { makeCsr } from '../support/pki.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });

describe('path building with cross certificates', () => {
  let pki: CrossPki;
  /** an anchor outside every pool */
  let z: TestAnchor;
  /** cross(B by Z): B's subject and key, but a dead end (Z is never trusted) */
  let deadEnd: CertificateInfo;
  let leaf: CertificateInfo;
  const label = (path: readonly CertificateInfo[]): string[] => {
    const names = new Map([
      [fingerprint(pki.issuer.cert.der), 'issuer'],
      [fingerprint(pki.cross.der), 'cross'],
      [fingerprint(deadEnd.der), 'deadEnd'],
      [fingerprint(pki.a.cert.der), 'A'],
      [fingerprint(pki.b.cert.der), 'B'],
      [fingerprint(leaf.der), 'leaf'],
    ]);
    return path.map((c) => names.get(fingerprint(c.der)) ?? '?');
  };

  before(async () => {
    pki = await defaultCrossPki(NOW);
    z = await testAnchor({ now: NOW, lifetimeMs: 400 * DAY });
    deadEnd = await crossOf(pki, { now: NOW, by: z });
    const cred = createIssuerCredential({
      certificatePem: pki.issuer.pem,
      signer: pki.issuer.signer,
      anchorsPem: pki.b.pem,
      now: NOW,
    });
    const csr = parseCsr((await makeCsr({ dns: [WEB.dns] })).der);
    leaf = parseCertificate(
      issueForCsr(cred, { csr, identity: WEB, policy: DEFAULT_LEAF_POLICY, now: NOW }).der,
    );
  });

  it('reaches B directly when B is an anchor, even with the cross certificate first in the pool', () => {
    const v = createChainVerifier({ anchors: [pki.b.cert], intermediates: [pki.cross, pki.issuer.cert] });
    assert.deepEqual(label(v.verify(pki.issuer.cert, NOW)), ['issuer', 'B']);
    assert.deepEqual(label(v.verify(leaf, NOW)), ['leaf', 'issuer', 'B']);
  });

  it('reaches A through the cross certificate when A is the only anchor', () => {
    const v = createChainVerifier({ anchors: [pki.a.cert], intermediates: [pki.cross, pki.issuer.cert] });
    assert.deepEqual(label(v.verify(leaf, NOW)), ['leaf', 'issuer', 'cross', 'A']);
  });

  it('prefers the anchor to a same-subject intermediate when both are trusted (the shortest path)', () => {
    const v = createChainVerifier({
      anchors: [pki.a.cert, pki.b.cert],
      intermediates: [pki.cross, pki.issuer.cert],
    });
    assert.deepEqual(label(v.verify(leaf, NOW)), ['leaf', 'issuer', 'B']);
  });

  it('backtracks out of a dead end (a cross certificate by an untrusted anchor, first in the pool)', () => {
    const v = createChainVerifier({
      anchors: [pki.a.cert],
      intermediates: [pki.issuer.cert, deadEnd, pki.cross],
    });
    assert.deepEqual(label(v.verify(leaf, NOW)), ['leaf', 'issuer', 'cross', 'A']);
    const only = createChainVerifier({ anchors: [pki.a.cert], intermediates: [pki.issuer.cert, deadEnd] });
    assert.throws(() => only.verify(leaf, NOW), { code: 'ERR_CHAIN_UNTRUSTED' });
  });

  it('gives up with ERR_CHAIN_UNTRUSTED after a bounded number of signature checks (many same-subject candidates)', async () => {
    // 100 certificates with B's subject and key, each a dead end, before the one that leads to A: the
    // search stops within its signature budget instead of trying them all
    const decoys: CertificateInfo[] = [];
    for (let i = 0; i < 100; i++) {
      decoys.push(await crossOf(pki, { now: NOW, by: z }));
    }
    const v = createChainVerifier({ anchors: [pki.a.cert], intermediates: [...decoys, pki.cross] });
    assert.throws(() => v.verify(pki.issuer.cert, NOW), { code: 'ERR_CHAIN_UNTRUSTED' });
    // with fewer decoys than the budget, the same pool finds A
    const few = createChainVerifier({
      anchors: [pki.a.cert],
      intermediates: [...decoys.slice(0, 10), pki.cross],
    });
    assert.deepEqual(label(few.verify(pki.issuer.cert, NOW)), ['issuer', 'cross', 'A']);
    // an expired candidate met first (ERR_CERT_EXPIRED on that dead end) does not hide the exhausted
    // budget; without the decoys that same dead end is what is reported
    const expired = await crossCertificate({
      by: z,
      subject: pki.b.cert,
      notBefore: new Date(NOW.getTime() - 2 * DAY),
      notAfter: new Date(NOW.getTime() - DAY),
    });
    const stale = createChainVerifier({ anchors: [pki.a.cert], intermediates: [expired, ...decoys] });
    assert.throws(() => stale.verify(pki.issuer.cert, NOW), { code: 'ERR_CHAIN_UNTRUSTED' });
    const staleOnly = createChainVerifier({ anchors: [pki.a.cert], intermediates: [expired] });
    assert.throws(() => staleOnly.verify(pki.issuer.cert, NOW), { code: 'ERR_CERT_EXPIRED' });
  });
});
