import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LanyardError, parseCertificate, systemClock } from '../../ca/index.js';
import { testPki } from '../support/pki.js';

const malformed = (err: unknown): boolean => err instanceof LanyardError && err.code === 'ERR_CERT_MALFORMED';

/** `der` with the byte at `at` (relative to the first occurrence of `marker`) replaced. */
function patched(der: Buffer, marker: string, at: number, byte: number): Buffer {
  const i = der.indexOf(Buffer.from(marker, 'hex'));
  assert.ok(i >= 0, `marker ${marker} found`);
  const out = Buffer.from(der);
  out[i + at] = byte;
  return out;
}

describe('certificate reader: extensions that carry constraints are read whole or refused', () => {
  it('reads the issuer profile: CA:TRUE, pathLen 0', async () => {
    const pki = await testPki({ now: systemClock.now() });
    const issuer = parseCertificate(pki.issuers.east?.cert.der ?? Buffer.alloc(0));
    assert.equal(issuer.isCa, true);
    assert.equal(issuer.pathLen, 0);
  });

  it('refuses a basicConstraints holding anything but cA and a non-negative pathLen (a pathLen it skipped would not apply)', async () => {
    const pki = await testPki({ now: systemClock.now() });
    const der = pki.issuers.east?.cert.der ?? Buffer.alloc(0);
    // 30 06 | 01 01 ff | 02 01 00: CA:TRUE, pathLen 0 (found by the bundle fuzzer: another tag in place of
    // the INTEGER left a CA with no pathLen at all)
    for (const [at, byte, what] of [
      [5, 0x82, 'the pathLen INTEGER tagged [2]'],
      [5, 0x24, 'the pathLen INTEGER tagged 0x24'],
      [7, 0xff, 'pathLen -1'],
      [3, 0x02, 'cA as a BOOLEAN of two bytes'],
    ] as const)
      assert.throws(() => parseCertificate(patched(der, '30060101ff020100', at, byte)), malformed, what);
  });

  it('refuses name constraints holding anything but permitted and excluded subtrees (a skipped one would not apply)', async () => {
    const pki = await testPki({ now: systemClock.now(), permitDns: ['cluster.local'] });
    const der = pki.issuers.east?.cert.der ?? Buffer.alloc(0);
    assert.deepEqual(parseCertificate(der).permittedDns, ['cluster.local']);
    // nameConstraints: 06 03 55 1d 1e, critical 01 01 ff, 04 LL, 30 LL, a0 (permittedSubtrees)
    const i = der.indexOf(Buffer.from('0603551d1e0101ff04', 'hex'));
    assert.ok(i >= 0, 'a critical nameConstraints extension');
    const a0 = i + 8 + 2 + 2;
    assert.equal(der[a0], 0xa0);
    const bad = Buffer.from(der);
    bad[a0] = 0xa2;
    assert.throws(() => parseCertificate(bad), malformed);
  });
});
