// The JWT authenticator as a fuzz suite: mutated tokens, odd headers, correctly signed tokens with odd
// claims, random strings.
import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { CompactSign, compactVerify } from 'jose';
import { DEFAULT_TOKEN_AUDIENCE } from '../../issuer/authn/index.js';
import {
  DEV_TOKEN_ISSUER,
  createSigningKeyDir,
  mintServiceAccountToken,
  type SigningKey,
} from '../../bin/token/index.js';
import { FakeClock } from '../support/clock.js';
import { tempDir } from '../support/temp-dir.js';
import { FuzzRunner, describeInput, type Outcome } from './harness.js';
import {
  assertSettled,
  countKind,
  countOracle,
  group,
  newStats,
  seedTextMutations,
  type FuzzSuite,
} from './suite.js';

export const NOW = new Date('2026-06-01T00:00:00Z');
const NOW_S = NOW.getTime() / 1000;
/** per-input time bound, ms: a verification takes well under a millisecond */
const TIME_BOUND_MS = 2000;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** the authenticator's default exp/nbf tolerance, s */
const SKEW_S = 20;

export const TOKEN_GROUPS = {
  mutations: 'character changes, truncations, insertions, deletions and segment swaps of valid tokens',
  headers: 'odd headers (alg, kid, crit, b64, …) in front of a real signature',
  claims: 'correctly signed tokens with odd claims (types, times, audiences, subjects, kubernetes.io)',
  random: 'random strings and bytes',
} as const;

export interface TokenSuite extends FuzzSuite {
  /** the cluster's signing key (its JWKS is what the authenticator trusts) */
  readonly key: SigningKey;
}

export async function createTokenSuite(): Promise<TokenSuite> {
  const dir = tempDir('lanyard-fuzz-');
  const key = await createSigningKeyDir(join(dir.dir, 'sa'), { clock: new FakeClock(NOW) });
  const publicKey: KeyObject = createPublicKey(key.key);
  const runner = new FuzzRunner(
    { jwksFile: key.jwksPath, tokenIssuer: DEV_TOKEN_ISSUER, nowMs: NOW.getTime() },
    TIME_BOUND_MS,
  );
  const stats = newStats();
  const seeds: Buffer[] = [];
  for (const [namespace, serviceAccount, podName] of [
    ['default', 'web', undefined],
    ['linkerd', 'linkerd-destination', 'dst-0'],
    ['a', 'b', 'p'],
  ] as const) {
    seeds.push(
      Buffer.from(
        await mintServiceAccountToken({
          key: key.key,
          kid: key.kid,
          namespace,
          serviceAccount,
          ...(podName !== undefined ? { podName } : {}),
          now: NOW,
        }),
        'latin1',
      ),
    );
  }
  const seedAt = (i: number): Buffer => seeds[i % seeds.length] as Buffer;

  /**
   * An accepted token checked independently of the authenticator: jose verifies the signature with
   * the cluster's public key, and the claims must be what the authenticator promises (iss, aud, a
   * sub naming the returned account, exp and nbf valid at the test clock within the skew).
   */
  async function checkAccepted(
    input: Uint8Array,
    account: { readonly namespace: string; readonly name: string },
    what: string,
  ): Promise<void> {
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(Buffer.from(input).toString('latin1'), publicKey, {
        algorithms: ['ES256'],
      }));
    } catch (err) {
      assert.fail(`accepted, but jose does not verify it (${(err as Error).message}): ${what}`);
    }
    countOracle(stats, 'jose compactVerify + claims');
    const claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
    const show = `${JSON.stringify(claims)}: ${what}`;
    assert.equal(claims.iss, DEV_TOKEN_ISSUER, `accepted with iss ${show}`);
    const aud = claims.aud;
    assert.ok(
      aud === DEFAULT_TOKEN_AUDIENCE || (Array.isArray(aud) && aud.includes(DEFAULT_TOKEN_AUDIENCE)),
      `accepted with aud ${show}`,
    );
    assert.equal(
      claims.sub,
      `system:serviceaccount:${account.namespace}:${account.name}`,
      `accepted for ${JSON.stringify(account)} with sub ${show}`,
    );
    const { exp, nbf } = claims;
    assert.ok(typeof exp === 'number' && NOW_S < exp + SKEW_S, `accepted with exp ${show}`);
    assert.ok(
      nbf === undefined || (typeof nbf === 'number' && NOW_S >= nbf - SKEW_S),
      `accepted with nbf ${show}`,
    );
  }

  /** The one rule: accepted (a genuinely valid token for a DNS-1123 service account), or ERR_TOKEN_INVALID. */
  async function check(input: Uint8Array, o: Outcome): Promise<void> {
    const what = `token ${describeInput(input)} (${JSON.stringify(Buffer.from(input).toString('latin1').slice(0, 300))})`;
    assertSettled(o, 'authenticate', what, TIME_BOUND_MS);
    if (o.kind === 'accepted') {
      stats.accepted++;
      assert.ok(
        o.account !== undefined && LABEL.test(o.account.namespace) && LABEL.test(o.account.name),
        `accepted with an odd account ${JSON.stringify(o.account)}: ${what}`,
      );
      await checkAccepted(input, o.account, what);
      stats.reverified++;
      countKind(stats, 'accepted');
      return;
    }
    assert.equal(o.code, 'ERR_TOKEN_INVALID', `${o.code ?? '?'} (${o.message ?? ''}) for ${what}`);
    assert.equal(o.grpcStatus, 'UNAUTHENTICATED');
    // the kind of failure, for the coverage line: the message's words up to the first quoted value
    const words: string[] = [];
    for (const w of (o.message ?? '').split(' ')) {
      if (words.length >= 6 || /["[{(\d]|^(null|true|false|-)$/.test(w)) break;
      words.push(w);
    }
    countKind(stats, words.join(' '));
  }

  const header = fc.record(
    {
      alg: fc.oneof(
        fc.constantFrom('ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'none', 'HS256', 'es256', ''),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      kid: fc.oneof(fc.constant(key.kid), fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 1 })),
      typ: fc.constantFrom('JWT', 'at+jwt', 7),
      crit: fc.oneof(
        fc.constant(['b64']),
        fc.constant(['exp']),
        fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 }),
        fc.constant('b64'),
      ),
      b64: fc.oneof(fc.boolean(), fc.constant('false')),
      jku: fc.constant('https://127.0.0.1:1/jwks'),
    },
    { requiredKeys: [] },
  );

  const jwtShaped = fc
    .array(fc.string({ unit: fc.constantFrom(...'ABCDEFabcdef0123456789-_'.split('')), maxLength: 60 }), {
      minLength: 1,
      maxLength: 5,
    })
    .map((parts) => Buffer.from(parts.join('.'), 'latin1'));

  return {
    target: 'token',
    runner,
    timeBoundMs: TIME_BOUND_MS,
    key,
    seeds: seeds.map((s, i) => ({ name: `token ${i}`, input: s })),
    groups: [
      seedTextMutations(TOKEN_GROUPS.mutations, 3000, seedAt, { maxSeed: 100, maxMutations: 3 }),
      group(TOKEN_GROUPS.headers, 600, fc.tuple(fc.nat({ max: 100 }), header), ([seedIndex, h]) => {
        const [, payload, sig] = seedAt(seedIndex).toString('latin1').split('.');
        return Buffer.from(
          `${Buffer.from(JSON.stringify(h)).toString('base64url')}.${payload ?? ''}.${sig ?? ''}`,
          'latin1',
        );
      }),
      group(TOKEN_GROUPS.claims, 1500, fc.tuple(payloadBytes(), fc.boolean()), async ([payload, withKid]) => {
        const jws = await new CompactSign(payload)
          .setProtectedHeader({ alg: 'ES256', ...(withKid ? { kid: key.kid } : {}) })
          .sign(key.key);
        return Buffer.from(jws, 'latin1');
      }),
      group(
        TOKEN_GROUPS.random,
        1200,
        fc.oneof(
          jwtShaped,
          fc.string({ maxLength: 200 }).map((s) => Buffer.from(s, 'utf8')),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        ),
        (b) => b,
      ),
    ],
    edgeCases: [Buffer.alloc(0), Buffer.alloc(16 * 1024 + 1, 0x41), Buffer.from('...'), Buffer.from('a.b.c')],
    check,
    stats,
    close: async () => {
      await runner.close();
      dir.cleanup();
    },
  };
}

/** JWT payloads: mostly claims that reach the later checks, sometimes any JSON or bytes. */
function payloadBytes(): fc.Arbitrary<Buffer> {
  const label = fc.stringMatching(/^[a-z0-9](?:[-a-z0-9]{0,8}[a-z0-9])?$/);
  const odd = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));
  const time = fc.oneof(
    fc.integer({ min: NOW_S - 7200, max: NOW_S + 7200 }),
    fc.constantFrom(0, -1, 1e308, NOW_S + 0.5, Number.MAX_SAFE_INTEGER),
    odd,
  );
  const oddSub = fc.oneof(
    fc.constantFrom(
      'system:serviceaccount:a:b:c',
      'system:serviceaccount:A:b',
      'system:serviceaccount::b',
      'system:serviceaccount:a:',
      `system:serviceaccount:${'a'.repeat(64)}:b`,
      'system:node:n1',
    ),
    odd,
  );
  /** mostly a valid value, so that later checks are reached; sometimes anything, or nothing */
  const biased = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
    fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: odd });
  const claims = fc
    .record({
      namespace: label,
      name: label,
      iss: biased(fc.constantFrom(DEV_TOKEN_ISSUER, DEV_TOKEN_ISSUER, `${DEV_TOKEN_ISSUER}/`)),
      aud: biased(
        fc.constantFrom<unknown>(
          ['identity.l5d.io'],
          ['identity.l5d.io'],
          'identity.l5d.io',
          ['other', 'identity.l5d.io'],
          [],
          ['other'],
        ),
      ),
      /** undefined: `system:serviceaccount:<namespace>:<name>` */
      sub: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, oddSub),
      exp: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: NOW_S + 60, max: NOW_S + 7200 }) }, time),
      nbf: fc.oneof(time, fc.constant(undefined)),
      iat: fc.oneof(time, fc.constant(undefined)),
      /** 'same': the kubernetes.io claim names the account of `sub` */
      k8s: fc.oneof(
        { weight: 4, arbitrary: fc.constant('same' as const) },
        fc.record(
          {
            namespace: biased(label),
            serviceaccount: biased(
              fc.record({ name: biased(label), uid: fc.uuid() }, { requiredKeys: ['name'] }),
            ),
            pod: odd,
          },
          { requiredKeys: [] },
        ),
        odd,
      ),
    })
    .map(({ namespace, name, sub, k8s, ...rest }) => ({
      ...rest,
      sub: sub ?? `system:serviceaccount:${namespace}:${name}`,
      'kubernetes.io': k8s === 'same' ? { namespace, serviceaccount: { name, uid: 'u' } } : k8s,
    }));
  return fc.oneof(
    { weight: 8, arbitrary: claims.map((c) => Buffer.from(JSON.stringify(c))) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  );
}
