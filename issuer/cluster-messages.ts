// The IPC messages between a `--workers N` primary and its node:cluster workers.
import type { CredentialMessage, CredentialWanted } from './credential-handoff.js';
import type { AnchorIssuance } from './ledger.js';

/** worker → primary */
export type FromWorker =
  { type: 'listening'; port: number } | { type: 'ledger'; snapshot: AnchorIssuance[] } | CredentialWanted;

/** primary → worker */
export type ToWorker = { type: 'drain'; graceMs: number } | CredentialMessage;
