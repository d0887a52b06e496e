import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fingerprint } from '../../ca/index.js';
import { createIssuanceLedger, issuanceObserver } from '../../issuer/ledger.js';
import { FakeClock } from '../support/clock.js';
import { testPki } from '../support/pki.js';

describe('the issuance ledger', () => {
  it('counts the anchors it has seen without a snapshot, and its snapshot stays per anchor', async () => {
    const now = new FakeClock('2026-06-01T00:00:00Z').now();
    const [a, b] = await Promise.all([testPki({ now }), testPki({ now })]);
    const ledger = createIssuanceLedger();
    assert.equal(ledger.anchors, 0);
    const later = new Date(now.getTime() + 3_600_000);
    ledger.record(a.anchor.cert, now);
    ledger.record(a.anchor.cert, later);
    assert.equal(ledger.anchors, 1);
    ledger.record(b.anchor.cert, now);
    assert.equal(ledger.anchors, 2);
    assert.equal(ledger.total, 3);
    assert.deepEqual(ledger.snapshot(), [
      { anchorFingerprint: fingerprint(a.anchor.cert.der), issued: 2, latestNotAfter: later.toISOString() },
      { anchorFingerprint: fingerprint(b.anchor.cert.der), issued: 1, latestNotAfter: now.toISOString() },
    ]);
  });

  it('splits its total by api with one counter, Certify by default', async () => {
    const now = new FakeClock('2026-06-01T00:00:00Z').now();
    const { anchor } = await testPki({ now });
    const ledger = createIssuanceLedger();
    assert.deepEqual(ledger.byApi(), { Certify: 0, CreateCertificate: 0 });
    ledger.record(anchor.cert, now);
    ledger.record(anchor.cert, now, 'CreateCertificate');
    ledger.record(anchor.cert, now, 'CreateCertificate');
    ledger.record(anchor.cert, now, 'Certify');
    assert.deepEqual(ledger.byApi(), { Certify: 2, CreateCertificate: 2 });
    assert.equal(ledger.total, 4);
    assert.equal(ledger.snapshot()[0]?.issued, 4, 'per anchor, both APIs together');
  });

  it('records each API through its own observer', async () => {
    const now = new FakeClock('2026-06-01T00:00:00Z').now();
    const { anchor } = await testPki({ now });
    const ledger = createIssuanceLedger();
    const leaf = { leaf: { anchor: anchor.cert, notAfter: now } };
    issuanceObserver(ledger)(leaf);
    issuanceObserver(ledger, 'CreateCertificate')(leaf);
    issuanceObserver(ledger, 'CreateCertificate')(leaf);
    assert.deepEqual(ledger.byApi(), { Certify: 1, CreateCertificate: 2 });
  });
});
