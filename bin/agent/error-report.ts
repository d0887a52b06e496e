// How the agent names what went wrong in its logs: a code and a description, side by side.
import * as grpc from '@grpc/grpc-js';
import { LanyardError } from '../../ca/index.js';

export function errorCode(err: unknown): string {
  if (err instanceof LanyardError) return err.code;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? (grpc.status[code] ?? String(code)) : 'ERR_INTERNAL';
}

/** What went wrong, without the code (errorCode() gives that; callers print the two side by side). */
export function describeError(err: unknown): string {
  if (err instanceof LanyardError) return err.message;
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e.code === 'number' && typeof e.details === 'string') return e.details;
  return typeof e.message === 'string' ? e.message : String(err);
}
