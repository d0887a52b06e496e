import { readFile } from 'node:fs/promises';
import { UsageError } from '../../ca/index.js';
import { lookAtStats } from '../file-watch.js';
import { fetchJwks, readJwksFile } from './jwks.js';

/** Where the verification keys come from: a local JWKS file, or an HTTPS URL (CA bundle optional). */
export type JwksSource =
  | { readonly file: string }
  | {
      readonly url: string;
      readonly caFile?: string;
      /** bearer token sent with the request, re-read on every fetch (Kubernetes rotates projected tokens) */
      readonly tokenFile?: string;
    };

export type ValidSource =
  { readonly file: string } | { readonly url: URL; readonly caFile?: string; readonly tokenFile?: string };

/** The source as given, checked: a file path that is not empty, or an https: URL. */
export function validateSource(s: JwksSource): ValidSource {
  if ('file' in s) {
    if (s.file === '') throw new UsageError('the JWKS file path is empty');
    return { file: s.file };
  }
  let url: URL;
  try {
    url = new URL(s.url);
  } catch {
    throw new UsageError(`the JWKS URL ${JSON.stringify(s.url)} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new UsageError(`the JWKS URL must use https:, not ${url.protocol}`);
  return {
    url,
    ...(s.caFile !== undefined ? { caFile: s.caFile } : {}),
    ...(s.tokenFile !== undefined ? { tokenFile: s.tokenFile } : {}),
  };
}

/** File source: the file's text; its version goes into `version` as soon as it is known. */
export async function readFileSource(
  file: string,
  version: { fingerprint?: string },
): Promise<{ text: string; maxAgeMs?: undefined }> {
  const look = await lookAtStats([file]);
  if (!look.ok) {
    const err = look.error;
    throw new Error(`cannot read JWKS file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  version.fingerprint = look.fingerprint;
  return { text: await readJwksFile(file) };
}

/** URL source: the fetched text and the answer's Cache-Control max-age. */
export async function readUrlSource(
  source: { readonly url: URL; readonly caFile?: string; readonly tokenFile?: string },
  o: { readonly timeoutMs: number; readonly signal: AbortSignal },
): Promise<{ text: string; maxAgeMs: number | undefined }> {
  const caPem = source.caFile !== undefined ? await readCaFile(source.caFile) : undefined;
  const bearerToken =
    source.tokenFile !== undefined ? (await readCaFile(source.tokenFile)).trim() : undefined;
  const fetched = await fetchJwks(source.url, {
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    ...(caPem !== undefined ? { caPem } : {}),
    ...(bearerToken !== undefined ? { bearerToken } : {}),
  });
  return { text: fetched.text, maxAgeMs: fetched.maxAgeMs };
}

async function readCaFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(
      `cannot read ${path} (JWKS CA or token file): ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}
