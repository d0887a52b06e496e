import type { Clock } from '../ca/index.js';
import type { CredentialSource } from './credentials.js';

/** What the health service follows: a status reporter, or a cluster worker's readiness alone. */
export interface Readiness {
  ready(): boolean;
}

/** Ready: a credential is loaded and its chain has not expired. */
export function credentialReady(credentials: CredentialSource, clock: Clock): boolean {
  const cred = credentials.current();
  return cred !== undefined && clock.now().getTime() < cred.chainNotAfter.getTime();
}
