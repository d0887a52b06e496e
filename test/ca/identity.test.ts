import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_IDENTITY_DOMAIN,
  isDns1123Label,
  isDns1123Subdomain,
  validateIdentityDomain,
  workloadIdentity,
  type IdentityDomain,
} from '../../ca/index.js';
import { parseIdentity } from '../../ca/identity.js';

const label = fc.stringMatching(/^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/);
const shortLabel = fc.stringMatching(/^[a-z0-9](?:[-a-z0-9]{0,14}[a-z0-9])?$/);
const domainArb: fc.Arbitrary<IdentityDomain> = fc.record({
  trustDomain: fc.array(shortLabel, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.')),
  controlNamespace: shortLabel,
});

describe('workloadIdentity', () => {
  it('derives the Linkerd DNS identity and the SPIFFE ID', () => {
    const id = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });
    assert.equal(id.dns, 'web.default.serviceaccount.identity.linkerd.cluster.local');
    assert.equal(id.spiffeId, 'spiffe://cluster.local/ns/default/sa/web');
    assert.equal(id.namespace, 'default');
    assert.equal(id.name, 'web');
    assert.ok(Object.isFrozen(id));
  });

  it('uses the control namespace and trust domain of the identity domain', () => {
    const id = workloadIdentity(
      { trustDomain: 'east.example.org', controlNamespace: 'mesh' },
      { namespace: 'payments', name: 'api-v2' },
    );
    assert.equal(id.dns, 'api-v2.payments.serviceaccount.identity.mesh.east.example.org');
    assert.equal(id.spiffeId, 'spiffe://east.example.org/ns/payments/sa/api-v2');
  });

  it('accepts names of exactly 63 characters', () => {
    const long = `a${'-'.repeat(61)}z`;
    assert.equal(workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: long, name: long }).name, long);
  });

  it('rejects namespaces and service accounts that are not DNS-1123 labels with ERR_IDENTITY_INVALID', () => {
    for (const bad of ['', 'Web', 'web_1', '-web', 'web-', 'a.b', 'x'.repeat(64), 'wéb', 'web ', ' web']) {
      assert.throws(() => workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: bad, name: 'web' }), {
        code: 'ERR_IDENTITY_INVALID',
      });
      assert.throws(() => workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: bad }), {
        code: 'ERR_IDENTITY_INVALID',
      });
    }
  });

  it('rejects an identity longer than 253 characters with ERR_IDENTITY_INVALID', () => {
    const domain = { trustDomain: `${'a'.repeat(60)}.${'b'.repeat(60)}`, controlNamespace: 'linkerd' };
    const long = 'x'.repeat(63);
    assert.throws(() => workloadIdentity(domain, { namespace: long, name: long }), {
      code: 'ERR_IDENTITY_INVALID',
    });
    assert.equal(workloadIdentity(domain, { namespace: 'ns', name: 'sa' }).dns.length <= 253, true);
  });
});

describe('parseIdentity', () => {
  it('inverts workloadIdentity for any valid names and domain (300 runs)', () => {
    fc.assert(
      fc.property(domainArb, label, label, (domain, namespace, name) => {
        const id = workloadIdentity(domain, { namespace, name });
        assert.deepEqual(parseIdentity(domain, id.dns), id);
      }),
      { numRuns: 300 },
    );
  });

  it('returns undefined for names that are not identities in the domain', () => {
    const d = DEFAULT_IDENTITY_DOMAIN;
    for (const dns of [
      'web.default.serviceaccount.identity.linkerd.cluster.local.evil',
      'web.default.serviceaccount.identity.linkerd.other.local',
      'web.default.serviceaccount.identity.mesh.cluster.local',
      'a.web.default.serviceaccount.identity.linkerd.cluster.local',
      'default.serviceaccount.identity.linkerd.cluster.local',
      '.default.serviceaccount.identity.linkerd.cluster.local',
      'Web.default.serviceaccount.identity.linkerd.cluster.local',
      'web_1.default.serviceaccount.identity.linkerd.cluster.local',
      'web.default.serviceaccount.identity.linkerd.cluster.localx',
      '',
    ]) {
      assert.equal(parseIdentity(d, dns), undefined, dns);
    }
  });

  it('returns undefined, rather than throwing, for a name longer than 253 characters', () => {
    const domain = { trustDomain: `${'a'.repeat(60)}.${'b'.repeat(60)}`, controlNamespace: 'linkerd' };
    const long = 'x'.repeat(63);
    const dns = `${long}.${long}.serviceaccount.identity.linkerd.${domain.trustDomain}`;
    assert.ok(dns.length > 253);
    assert.equal(parseIdentity(domain, dns), undefined);
  });
});

describe('DNS-1123 names', () => {
  it('isDns1123Label follows the Kubernetes rule', () => {
    for (const ok of ['a', '0', 'web', 'web-1', 'a-b-c', '1abc', 'x'.repeat(63)])
      assert.equal(isDns1123Label(ok), true, ok);
    for (const bad of ['', 'A', 'web_1', '-a', 'a-', 'a.b', 'x'.repeat(64), 'é', ' a']) {
      assert.equal(isDns1123Label(bad), false, bad);
    }
  });

  it('isDns1123Subdomain accepts dot-separated labels up to 253 characters', () => {
    for (const ok of ['cluster.local', 'a', 'a.b.c', `${'a'.repeat(63)}.${'b'.repeat(63)}`]) {
      assert.equal(isDns1123Subdomain(ok), true, ok);
    }
    const max = Array.from({ length: 4 }, () => 'a'.repeat(63)).join('.');
    assert.equal(max.length, 255);
    for (const bad of ['', '.', 'a.', '.a', 'a..b', 'Cluster.local', 'a_b.c', max, 'x'.repeat(64)]) {
      assert.equal(isDns1123Subdomain(bad), false, bad);
    }
  });

  it('agree with the DNS-1123 regular expressions (500 runs)', () => {
    const chars = fc.constantFrom(...'abz09-.A_'.split(''));
    fc.assert(
      fc.property(
        fc.array(chars, { maxLength: 70 }).map((cs) => cs.join('')),
        (s) => {
          const labelOk = s.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s);
          assert.equal(isDns1123Label(s), labelOk);
          const subOk =
            s.length <= 253 &&
            s.split('.').every((l) => l.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(l));
          assert.equal(isDns1123Subdomain(s), subOk);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('validateIdentityDomain', () => {
  it('returns a frozen copy of a valid domain', () => {
    const input = { trustDomain: 'cluster.local', controlNamespace: 'linkerd', extra: true };
    const d = validateIdentityDomain(input);
    assert.deepEqual(d, { trustDomain: 'cluster.local', controlNamespace: 'linkerd' });
    assert.ok(Object.isFrozen(d));
  });

  it('rejects a trust domain that is not a DNS-1123 name with ERR_IDENTITY_INVALID', () => {
    for (const trustDomain of [
      '',
      'Cluster.Local',
      'cluster..local',
      'cluster.local.',
      'spiffe://x',
      'a_b',
    ]) {
      assert.throws(() => validateIdentityDomain({ trustDomain, controlNamespace: 'linkerd' }), {
        code: 'ERR_IDENTITY_INVALID',
      });
    }
  });

  it('rejects a control namespace that is not a DNS-1123 label with ERR_IDENTITY_INVALID', () => {
    for (const controlNamespace of ['', 'Linkerd', 'linkerd.io', 'linkerd-']) {
      assert.throws(() => validateIdentityDomain({ trustDomain: 'cluster.local', controlNamespace }), {
        code: 'ERR_IDENTITY_INVALID',
      });
    }
  });
});
