import {
  AuthenticatorUnavailableError,
  InvalidTokenError,
  type AuthenticatedAccount,
  type Authenticator,
} from '../../issuer/authn/index.js';

/**
 * A test authenticator: tokens "sa:<ns>:<name>" authenticate as that account, and
 * "sa:<ns>:<name>:<pod>[:<uid>]" as that account with the pod a projected token names (its
 * `kubernetes.io.pod` claim); "down" means the backend is unreachable, anything else is invalid.
 * `hold()` makes calls wait until released.
 */
export function scriptedAuthenticator(): Authenticator & {
  calls: number;
  hold(): void;
  release(): void;
  readonly waiting: number;
  readonly aborted: number;
} {
  let holding = false;
  let waiters: (() => void)[] = [];
  let calls = 0;
  let aborted = 0;
  return {
    name: 'scripted',
    get calls() {
      return calls;
    },
    set calls(v) {
      calls = v;
    },
    get waiting() {
      return waiters.length;
    },
    get aborted() {
      return aborted;
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      const w = waiters;
      waiters = [];
      for (const fn of w) fn();
    },
    async authenticate(token: Uint8Array, opts: { signal: AbortSignal }): Promise<AuthenticatedAccount> {
      calls++;
      if (holding) {
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => {
            aborted++;
            waiters = waiters.filter((w) => w !== done);
            reject(new AuthenticatorUnavailableError('aborted', { reason: 'cancelled' }));
          };
          const done = (): void => {
            opts.signal.removeEventListener('abort', onAbort);
            resolve();
          };
          waiters.push(done);
          opts.signal.addEventListener('abort', onAbort, { once: true });
        });
      }
      const t = Buffer.from(token).toString('utf8');
      if (t === 'down')
        throw new AuthenticatorUnavailableError('token backend unreachable', { reason: 'unreachable' });
      const m = /^sa:([^:]+):([^:]+)(?::([^:]+)(?::([^:]+))?)?$/.exec(t);
      if (m === null) throw new InvalidTokenError('token is not valid', { reason: 'not-authenticated' });
      const account = { namespace: m[1] as string, name: m[2] as string };
      if (m[3] === undefined) return account;
      return { ...account, pod: m[4] === undefined ? { name: m[3] } : { name: m[3], uid: m[4] } };
    },
  };
}
