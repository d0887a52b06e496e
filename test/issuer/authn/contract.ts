import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MAX_TOKEN_BYTES, type Authenticator } from '../../../issuer/authn/index.js';
import { type ServiceAccountRef } from '../../../ca/index.js';

/** What the contract suite needs from one Authenticator implementation. */
export interface ContractSubject {
  readonly authenticator: Authenticator;
  /** a token the authenticator accepts as `account` (and as nothing else) */
  validToken(account: ServiceAccountRef): Promise<string>;
  cleanup(): Promise<void>;
}

/**
 * A random token for every account the contract asks about, for authenticators whose table is fixed
 * at construction (the static one, and decorators around it).
 */
export function contractTokenTable(): {
  readonly table: Record<string, ServiceAccountRef>;
  readonly validToken: (account: ServiceAccountRef) => Promise<string>;
} {
  const accounts = [
    ['emojivoto', 'web'],
    ['emojivoto', 'voting'],
    ['booksapp', 'authors'],
    ['a', 'one'],
    ['a', 'two'],
    ['b', 'one'],
    ['linkerd', 'proxy'],
  ] as const;
  const table: Record<string, ServiceAccountRef> = {};
  const byAccount = new Map<string, string>();
  for (const [namespace, name] of accounts) {
    const token = `static-${randomBytes(24).toString('base64url')}`;
    table[token] = { namespace, name };
    byAccount.set(`${namespace}/${name}`, token);
  }
  return {
    table,
    validToken: (a) => {
      const t = byAccount.get(`${a.namespace}/${a.name}`);
      if (t === undefined) throw new Error(`no static token prepared for ${a.namespace}/${a.name}`);
      return Promise.resolve(t);
    },
  };
}

export const signal = (): AbortSignal => new AbortController().signal;
export const bytes = (token: string): Uint8Array => Buffer.from(token, 'utf8');

/**
 * Awaits `promise`, expecting a LanyardError with `code`; the message must contain neither the token
 * nor its JWT signature or payload segments, and must match `check` when given (the failed check
 * named for the operator).
 */
export async function assertRejects(
  promise: Promise<unknown>,
  code: 'ERR_TOKEN_INVALID' | 'ERR_AUTHENTICATOR_UNAVAILABLE',
  token: string,
  /** the structured reason the error must carry (InvalidTokenError / AuthenticatorUnavailableError) */
  reason?: string,
): Promise<Error> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof Error, `expected a rejection with ${code}`);
  assert.equal((caught as Error & { code?: string }).code, code, caught.message);
  assertNoToken(caught.message, token);
  if (reason !== undefined)
    assert.equal((caught as Error & { reason?: string }).reason, reason, caught.message);
  return caught;
}

export function assertNoToken(message: string, token: string): void {
  if (token !== '') assert.ok(!message.includes(token), `the message contains the token: ${message}`);
  for (const part of token.split('.')) {
    if (part.length >= 16)
      assert.ok(!message.includes(part), `the message contains a token segment: ${message}`);
  }
}

/** The behaviour every Authenticator owes its caller, run against one implementation. */
export function authenticatorContract(label: string, setup: () => Promise<ContractSubject>): void {
  describe(`Authenticator contract: ${label}`, () => {
    let s: ContractSubject;
    before(async () => {
      s = await setup();
    });
    after(async () => {
      await s.cleanup();
    });

    it('has a short name for logs and metrics', () => {
      assert.match(s.authenticator.name, /^[a-z][a-z-]*$/);
    });

    it('accepts a valid token and returns exactly its namespace and service account, frozen', async () => {
      const token = await s.validToken({ namespace: 'emojivoto', name: 'web' });
      const account = await s.authenticator.authenticate(bytes(token), { signal: signal() });
      assert.deepEqual({ ...account }, { namespace: 'emojivoto', name: 'web' });
      assert.deepEqual(Object.keys(account).sort(), ['name', 'namespace']);
      assert.ok(Object.isFrozen(account));
    });

    it('returns the same account when the same token is presented again', async () => {
      const token = await s.validToken({ namespace: 'booksapp', name: 'authors' });
      const first = await s.authenticator.authenticate(bytes(token), { signal: signal() });
      const second = await s.authenticator.authenticate(bytes(token), { signal: signal() });
      assert.deepEqual(second, first);
    });

    it('tells the accounts of different tokens apart, also when asked concurrently', async () => {
      const accounts = [
        { namespace: 'a', name: 'one' },
        { namespace: 'a', name: 'two' },
        { namespace: 'b', name: 'one' },
      ];
      const tokens = await Promise.all(accounts.map((a) => s.validToken(a)));
      const got = await Promise.all(
        tokens.map((t) => s.authenticator.authenticate(bytes(t), { signal: signal() })),
      );
      assert.deepEqual(
        got.map((g) => ({ ...g })),
        accounts,
      );
    });

    it('accepts the token as bytes inside a larger buffer (a view with an offset)', async () => {
      const token = await s.validToken({ namespace: 'linkerd', name: 'proxy' });
      const backing = Buffer.from(`xx${token}yy`, 'utf8');
      const view = new Uint8Array(backing.buffer, backing.byteOffset + 2, token.length);
      const account = await s.authenticator.authenticate(view, { signal: signal() });
      assert.deepEqual({ ...account }, { namespace: 'linkerd', name: 'proxy' });
    });

    it('rejects an empty token with ERR_TOKEN_INVALID', async () => {
      await assertRejects(
        s.authenticator.authenticate(new Uint8Array(0), { signal: signal() }),
        'ERR_TOKEN_INVALID',
        '',
      );
    });

    it('rejects a token it does not know with ERR_TOKEN_INVALID and does not echo it', async () => {
      const token =
        'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0.c2lnbmF0dXJlLW5vdC12YWxpZC0xMjM0NTY3ODk';
      await assertRejects(
        s.authenticator.authenticate(bytes(token), { signal: signal() }),
        'ERR_TOKEN_INVALID',
        token,
      );
    });

    it('rejects an oversized token with ERR_TOKEN_INVALID', async () => {
      const token = 'a'.repeat(MAX_TOKEN_BYTES + 1);
      await assertRejects(
        s.authenticator.authenticate(bytes(token), { signal: signal() }),
        'ERR_TOKEN_INVALID',
        token,
      );
    });

    it('rejects a slightly altered valid token with ERR_TOKEN_INVALID', async () => {
      const token = await s.validToken({ namespace: 'emojivoto', name: 'voting' });
      const i = Math.floor(token.length / 2);
      const altered = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
      await assertRejects(
        s.authenticator.authenticate(bytes(altered), { signal: signal() }),
        'ERR_TOKEN_INVALID',
        altered,
      );
    });
  });
}
