// `--workers N`: the credential is read and validated once, by the primary (on the file watch, at
// start and at each reload), and handed to the workers over the cluster IPC channel; workers read
// no credential files and poll nothing.
import type { Logger } from 'pino';
import { isLanyardError, type IssuerCredential } from '../ca/index.js';
import { issuerCredentialFromPem } from '../ca/store/index.js';
import type { CredentialMaterial, CredentialSource } from './credentials.js';

/** primary → worker: the credential in force (undefined: none validated yet) */
export interface CredentialMessage {
  readonly type: 'credential';
  readonly material: CredentialMaterial | undefined;
}
/** worker → primary: a worker that has just started asks for the credential in force */
export interface CredentialWanted {
  readonly type: 'credential-wanted';
}

export function isCredentialMessage(m: unknown): m is CredentialMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'credential';
}

/** A worker's credential source: fed by the primary's messages; reload() reads nothing. */
export interface HandedCredentialSource extends CredentialSource {
  /** takes the material the primary validated; the previous credential stays on failure */
  receive(material: CredentialMaterial | undefined): void;
}

/**
 * The worker builds its credential from the primary's PEM with createIssuerCredential, at the time
 * the primary validated it (`validatedAt`), rather than trusting a ready-made object: it needs the
 * parsed chain, the chain verifier and the DER leaf template anyway, and the checks themselves
 * (about two signature verifications, once per reload) cost next to nothing; so an IssuerCredential
 * is only ever made by createIssuerCredential, and at the primary's `now` the worker's verdict is the
 * primary's. It reads no file, polls nothing and logs no reload of its own (the primary does).
 */
export function createHandedCredentialSource(o: { readonly logger: Logger }): HandedCredentialSource {
  let credential: IssuerCredential | undefined;
  let loadedAt: Date | undefined;
  let anchorsSequence: number | undefined;
  const listeners = new Set<(cred: IssuerCredential) => void>();
  return {
    receive(material) {
      if (material === undefined) return;
      let next: IssuerCredential;
      try {
        // the one place a credential is assembled (the key through the key store): the primary hands
        // over what it read from the issuer directory (an HSM-held key would hand over a reference)
        next = issuerCredentialFromPem(
          { ...material, keyPath: 'the issuer key (from the primary)' },
          new Date(material.validatedAt),
        );
      } catch (err) {
        o.logger.error(
          { event: 'credential_handoff_failed', code: isLanyardError(err) ? err.code : 'ERR_INTERNAL' },
          'the credential handed over by the primary was refused; the previous one keeps serving',
        );
        return;
      }
      credential = next;
      loadedAt = new Date(material.loadedAt);
      anchorsSequence = material.anchorsSequence;
      for (const fn of listeners) fn(next);
    },
    current: () => credential,
    loadedAt: () => loadedAt,
    anchorsSequence: () => anchorsSequence,
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    reload: () => Promise.resolve({ result: 'unchanged' }),
    close: () => Promise.resolve(),
  };
}

/**
 * In a worker: asks the primary for the credential in force and keeps taking the ones it sends.
 * Resolves with the source once the first answer has arrived.
 */
export function receiveCredentialFromPrimary(o: {
  readonly logger: Logger;
  readonly process?: Pick<NodeJS.Process, 'on' | 'send'>;
}): Promise<HandedCredentialSource> {
  const proc = o.process ?? process;
  const source = createHandedCredentialSource({ logger: o.logger });
  return new Promise((resolve) => {
    proc.on('message', (m: unknown) => {
      if (!isCredentialMessage(m)) return;
      source.receive(m.material);
      resolve(source);
    });
    proc.send?.({ type: 'credential-wanted' } satisfies CredentialWanted);
  });
}
