import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DEFAULT_LEAF_POLICY, DEFAULTS, type LeafPolicy, type ParsedCsr } from '../../ca/index.js';
import { checkCsrNames, checkKeyAllowed, leafValidity } from '../../ca/policy.js';
import { parseCsr } from '../../ca/csr.js';
import { HOUR } from '../support/clock.js';
import { opensslCsr } from '../support/openssl.js';
import { makeCsr } from '../support/pki.js';

const WEB = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const NOW = new Date('2026-06-01T00:00:00Z');

async function csrWith(options: Parameters<typeof makeCsr>[0]): Promise<ParsedCsr> {
  return parseCsr((await makeCsr(options)).der);
}

describe('checkCsrNames', () => {
  let good: ParsedCsr;
  before(async () => {
    good = await csrWith({ dns: [WEB] });
  });

  it('accepts exactly one DNS SAN equal to the identity and an empty subject', () => {
    assert.doesNotThrow(() => {
      checkCsrNames(good, WEB);
    });
  });

  it('accepts a subject CN equal to the identity, or an empty CN', async () => {
    const withCn = await csrWith({ dns: [WEB], subject: `CN=${WEB}` });
    checkCsrNames(withCn, WEB);
    checkCsrNames({ ...good, commonName: '' }, WEB);
  });

  it('accepts the CSR a Linkerd proxy sends (made by openssl with only a DNS SAN)', () => {
    checkCsrNames(parseCsr(opensslCsr({ san: `DNS:${WEB}` }).csrDer), WEB);
  });

  const rejected: { name: string; csr: () => Promise<ParsedCsr> | ParsedCsr }[] = [
    { name: 'a CSR with no DNS SAN', csr: () => csrWith({}) },
    {
      name: 'a CSR whose only DNS SAN is another identity',
      csr: () => csrWith({ dns: [WEB.replace('web', 'db')] }),
    },
    { name: 'a DNS SAN that differs only in case', csr: () => csrWith({ dns: [WEB.toUpperCase()] }) },
    { name: 'a second DNS SAN', csr: () => csrWith({ dns: [WEB, 'web.example.com'] }) },
    { name: 'the identity twice', csr: () => csrWith({ dns: [WEB, WEB] }) },
    {
      name: 'a subject CN different from the identity',
      csr: () => csrWith({ dns: [WEB], subject: 'CN=admin' }),
    },
    {
      name: 'subject attributes other than CN',
      csr: () => csrWith({ dns: [WEB], subject: `CN=${WEB}, O=system:masters` }),
    },
    { name: 'an IP address SAN', csr: () => csrWith({ dns: [WEB], ips: ['10.0.0.1'] }) },
    { name: 'an email SAN', csr: () => csrWith({ dns: [WEB], emails: ['web@example.com'] }) },
    {
      name: 'a URI SAN, even the matching SPIFFE ID',
      csr: () => csrWith({ dns: [WEB], uris: ['spiffe://cluster.local/ns/default/sa/web'] }),
    },
    {
      name: 'an otherName SAN',
      csr: () => parseCsr(opensslCsr({ san: `DNS:${WEB},otherName:1.2.3.4;UTF8:x` }).csrDer),
    },
  ];
  for (const { name, csr } of rejected) {
    it(`rejects ${name} with ERR_CSR_NAMES`, async () => {
      const parsed = await csr();
      assert.throws(
        () => {
          checkCsrNames(parsed, WEB);
        },
        { code: 'ERR_CSR_NAMES' },
      );
    });
  }

  it('keeps its message short and free of control characters whatever the identity and names', () => {
    const messageOf = (f: () => void): string => {
      try {
        f();
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'ERR_CSR_NAMES');
        return (err as Error).message;
      }
      assert.fail('no error');
    };
    const long = messageOf(() => {
      checkCsrNames(good, 'x'.repeat(50_000));
    });
    assert.ok(long.length < 1024, `a message of ${long.length} characters`);
    const many = messageOf(() => {
      checkCsrNames({ ...good, dnsNames: Array.from({ length: 500 }, () => 'y'.repeat(200)) }, WEB);
    });
    assert.ok(many.length < 2048, `a message of ${many.length} characters`);
    const odd = messageOf(() => {
      checkCsrNames(
        {
          ...good,
          dnsNames: ['web\u0000.evil\r\n{"level":60}'],
          commonName: 'admin\u0000\u202e\u2028\u007f\u009b',
        },
        'id\u0000entity\n',
      );
    });
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(odd, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]/);
  });

  it('raises a PolicyError', () => {
    assert.throws(
      () => {
        checkCsrNames({ ...good, dnsNames: [] }, WEB);
      },
      (err: unknown) => err instanceof Error && err.name === 'PolicyError',
    );
  });
});

describe('checkKeyAllowed', () => {
  it('allows P-256 by default and returns the leaf key type', () => {
    assert.equal(checkKeyAllowed('p256', DEFAULT_LEAF_POLICY), 'p256');
  });

  it('denies P-384 by default with ERR_KEY_NOT_ALLOWED', () => {
    assert.throws(() => checkKeyAllowed('p384', DEFAULT_LEAF_POLICY), { code: 'ERR_KEY_NOT_ALLOWED' });
  });

  it('allows P-384 when the policy lists it', () => {
    const policy: LeafPolicy = { ...DEFAULT_LEAF_POLICY, allowedKeyTypes: ['p256', 'p384'] };
    assert.equal(checkKeyAllowed('p384', policy), 'p384');
    assert.equal(checkKeyAllowed('p256', policy), 'p256');
  });

  it('denies P-256 when the policy lists only P-384', () => {
    const policy: LeafPolicy = { ...DEFAULT_LEAF_POLICY, allowedKeyTypes: ['p384'] };
    assert.throws(() => checkKeyAllowed('p256', policy), { code: 'ERR_KEY_NOT_ALLOWED' });
  });

  it('denies RSA keys of any size with ERR_KEY_NOT_ALLOWED', () => {
    const lenient: LeafPolicy = { ...DEFAULT_LEAF_POLICY, allowedKeyTypes: ['p256', 'p384'] };
    for (const keyType of ['rsa2048', 'rsa3072', 'rsa4096'] as const) {
      assert.throws(() => checkKeyAllowed(keyType, DEFAULT_LEAF_POLICY), { code: 'ERR_KEY_NOT_ALLOWED' });
      assert.throws(() => checkKeyAllowed(keyType, lenient), { code: 'ERR_KEY_NOT_ALLOWED' });
    }
  });
});

describe('leafValidity', () => {
  const FAR = new Date('2030-01-01T00:00:00Z');

  it('defaults to a 24 h lifetime and 20 s of clock skew, P-256 only', () => {
    assert.equal(DEFAULT_LEAF_POLICY.lifetimeMs, 24 * HOUR);
    assert.equal(DEFAULT_LEAF_POLICY.clockSkewMs, 20_000);
    assert.equal(DEFAULTS.clockSkewMs, 20_000);
    assert.deepEqual(DEFAULT_LEAF_POLICY.allowedKeyTypes, ['p256']);
    assert.ok(Object.isFrozen(DEFAULT_LEAF_POLICY));
  });

  it('back-dates notBefore by the skew and sets notAfter to now + lifetime + skew', () => {
    const { notBefore, notAfter } = leafValidity(NOW, DEFAULT_LEAF_POLICY, FAR);
    assert.equal(notBefore.getTime(), NOW.getTime() - 20_000);
    assert.equal(notAfter.getTime(), NOW.getTime() + 24 * HOUR + 20_000);
  });

  it('caps notAfter at the chain notAfter', () => {
    const chainNotAfter = new Date(NOW.getTime() + HOUR);
    const { notBefore, notAfter } = leafValidity(NOW, DEFAULT_LEAF_POLICY, chainNotAfter);
    assert.equal(notBefore.getTime(), NOW.getTime() - 20_000);
    assert.deepEqual(notAfter, chainNotAfter);
  });

  it('uses the chain notAfter when it falls inside the skew', () => {
    const chainNotAfter = new Date(NOW.getTime() + 24 * HOUR + 10_000);
    assert.deepEqual(leafValidity(NOW, DEFAULT_LEAF_POLICY, chainNotAfter).notAfter, chainNotAfter);
  });

  it('rounds both ends down to whole seconds, never past the chain', () => {
    const now = new Date(NOW.getTime() + 999);
    const { notBefore, notAfter } = leafValidity(now, DEFAULT_LEAF_POLICY, FAR);
    assert.equal(notBefore.getTime(), NOW.getTime() - 20_000);
    assert.equal(notAfter.getTime(), NOW.getTime() + 24 * HOUR + 20_000);
    const chainNotAfter = new Date(NOW.getTime() + HOUR + 500);
    assert.equal(
      leafValidity(now, DEFAULT_LEAF_POLICY, chainNotAfter).notAfter.getTime(),
      NOW.getTime() + HOUR,
    );
  });

  it('follows the policy lifetime and skew', () => {
    const policy: LeafPolicy = { ...DEFAULT_LEAF_POLICY, lifetimeMs: 5 * 60_000, clockSkewMs: 0 };
    const { notBefore, notAfter } = leafValidity(NOW, policy, FAR);
    assert.deepEqual(notBefore, NOW);
    assert.equal(notAfter.getTime(), NOW.getTime() + 5 * 60_000);
  });
});
