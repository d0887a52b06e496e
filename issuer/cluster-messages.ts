// The IPC messages between a `--workers N` primary and its node:cluster workers.
import type { CredentialMessage, CredentialWanted } from './credential-handoff.js';
import type { AnchorIssuance, IssuedByApi } from './ledger.js';
import type { RenewalCacheBatch } from './renewal-cache-sharing.js';

/** worker → primary */
export type FromWorker =
  /** port: the gRPC port; istioPort: the Istio CA API's (--istio-listen), when on */
  | { type: 'listening'; port: number; istioPort?: number }
  | { type: 'ledger'; snapshot: AnchorIssuance[]; byApi: IssuedByApi }
  | CredentialWanted
  | RenewalCacheBatch;

/** primary → worker */
export type ToWorker = { type: 'drain'; graceMs: number } | CredentialMessage | RenewalCacheBatch;
