import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, calculateJwkThumbprint, type JWK } from 'jose';
import { CredentialError, UsageError, isDns1123Label, type Clock, FileError } from '../../ca/index.js';
import { writeFileAtomic } from '../../ca/store/index.js';
import { DEFAULT_TOKEN_AUDIENCE } from '../../issuer/authn/index.js';

/** The `iss` of tokens minted for development, as a default cluster's API server writes it. */
export const DEV_TOKEN_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** File names inside a signing-key directory. */
export const SIGNING_KEY_FILES = { key: 'signing.key', jwks: 'jwks.json' } as const;

/** An ES256 token-signing key and its public JWKS. */
export interface SigningKey {
  /** P-256 private key */
  readonly key: KeyObject;
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key */
  readonly kid: string;
  /** the public key as a JWK with kid, alg ES256 and use sig */
  readonly publicJwk: JWK;
  /** `{ keys: [publicJwk] }`, as written to jwks.json */
  readonly jwks: { readonly keys: readonly JWK[] };
  readonly keyPath: string;
  readonly jwksPath: string;
}

/**
 * Generates a P-256 key into DIR: `signing.key` (PKCS#8 PEM, mode 0600, atomic; an existing key is
 * replaced only with `force`, else ERR_KEY_EXISTS) and `jwks.json` (public JWKS, mode 0644).
 * Creates DIR (mode 0700) when missing.
 */
export async function createSigningKeyDir(
  dir: string,
  options: { readonly force?: boolean; readonly clock: Clock },
): Promise<SigningKey & { readonly createdAt: Date }> {
  const createdAt = options.clock.now();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const signing = await describeKey(dir, privateKey);
  await writeFileAtomic(signing.keyPath, pem, { mode: 0o600, overwrite: options.force === true });
  await writeFileAtomic(signing.jwksPath, `${JSON.stringify(signing.jwks, null, 2)}\n`, {
    mode: 0o644,
    overwrite: true,
  });
  return { ...signing, createdAt };
}

/**
 * Reads DIR/signing.key (a P-256 PKCS#8 key, else ERR_KEY_UNSUPPORTED). When DIR/jwks.json exists it
 * must contain the key's kid (else ERR_KEY_MISMATCH); the returned JWKS is derived from the key.
 */
export async function loadSigningKeyDir(dir: string): Promise<SigningKey> {
  const keyPath = join(dir, SIGNING_KEY_FILES.key);
  let pem: string;
  try {
    pem = await readFile(keyPath, 'utf8');
  } catch (err) {
    throw new FileError(
      'ERR_FILE_NOT_FOUND',
      `cannot read ${keyPath}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; create it with \`lanyard token keygen\``,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new FileError('ERR_FILE_INVALID', `${keyPath} is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CredentialError('ERR_KEY_UNSUPPORTED', `${keyPath} is not a P-256 (ES256) key`);
  }
  const signing = await describeKey(dir, key);
  let published: string | undefined;
  try {
    published = await readFile(signing.jwksPath, 'utf8');
  } catch {
    published = undefined;
  }
  if (published !== undefined) {
    let kids: unknown[] = [];
    try {
      const doc = JSON.parse(published) as { keys?: { kid?: unknown }[] };
      kids = Array.isArray(doc.keys) ? doc.keys.map((k) => k.kid) : [];
    } catch {
      kids = [];
    }
    if (!kids.includes(signing.kid)) {
      throw new CredentialError(
        'ERR_KEY_MISMATCH',
        `${signing.jwksPath} does not publish the key in ${keyPath} (kid ${signing.kid})`,
      );
    }
  }
  return signing;
}

/**
 * The key of DIR, or a new one made there when DIR has no signing.key (ERR_FILE_NOT_FOUND); any other
 * problem with an existing key is thrown, never papered over with a new key.
 */
export async function loadOrCreateSigningKeyDir(
  dir: string,
  options: { readonly clock: Clock },
): Promise<{ readonly key: SigningKey; readonly created: boolean }> {
  try {
    return { key: await loadSigningKeyDir(dir), created: false };
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_FILE_NOT_FOUND') throw err;
    return { key: await createSigningKeyDir(dir, { clock: options.clock }), created: true };
  }
}

async function describeKey(dir: string, privateKey: KeyObject): Promise<SigningKey> {
  const pub = createPublicKey(privateKey).export({ format: 'jwk' });
  const base: JWK = { kty: 'EC', crv: pub.crv as string, x: pub.x as string, y: pub.y as string };
  const kid = await calculateJwkThumbprint(base, 'sha256');
  const publicJwk: JWK = Object.freeze({ ...base, kid, alg: 'ES256', use: 'sig' });
  return {
    key: privateKey,
    kid,
    publicJwk,
    jwks: Object.freeze({ keys: Object.freeze([publicJwk]) }),
    keyPath: join(dir, SIGNING_KEY_FILES.key),
    jwksPath: join(dir, SIGNING_KEY_FILES.jwks),
  };
}

export interface MintOptions {
  /** P-256 private key */
  readonly key: KeyObject;
  readonly kid: string;
  /** `iss`; DEV_TOKEN_ISSUER when absent */
  readonly issuer?: string;
  /** the single member of `aud`; default "identity.l5d.io" */
  readonly audience?: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** uid of the service account; a random UUID when absent */
  readonly serviceAccountUid?: string;
  /** lifetime, ms; default one hour; whole seconds are used */
  readonly ttlMs?: number;
  /** iat and nbf */
  readonly now: Date;
  readonly podName?: string;
  readonly podUid?: string;
}

/**
 * Signs a token shaped like a Kubernetes projected service-account token: header {alg ES256, kid};
 * claims iss, sub `system:serviceaccount:<ns>:<sa>`, aud [audience], iat = nbf = now, exp = now +
 * ttl (seconds), and `kubernetes.io: { namespace, serviceaccount: {name, uid}, pod?: {name, uid} }`.
 */
export async function mintServiceAccountToken(o: MintOptions): Promise<string> {
  if (!isDns1123Label(o.namespace))
    throw new UsageError(`namespace ${JSON.stringify(o.namespace)} is not a DNS-1123 label`);
  if (!isDns1123Label(o.serviceAccount)) {
    throw new UsageError(`service account ${JSON.stringify(o.serviceAccount)} is not a DNS-1123 label`);
  }
  const ttlS = Math.floor((o.ttlMs ?? 3_600_000) / 1000);
  if (!Number.isFinite(ttlS) || ttlS < 1)
    throw new UsageError('the token lifetime must be at least one second');
  if (o.podUid !== undefined && o.podName === undefined) {
    throw new UsageError('a pod uid needs a pod name');
  }
  const iat = Math.floor(o.now.getTime() / 1000);
  const k8s: Record<string, unknown> = {
    namespace: o.namespace,
    serviceaccount: { name: o.serviceAccount, uid: o.serviceAccountUid ?? randomUUID() },
  };
  if (o.podName !== undefined) k8s.pod = { name: o.podName, uid: o.podUid ?? randomUUID() };
  return new SignJWT({ 'kubernetes.io': k8s })
    .setProtectedHeader({ alg: 'ES256', kid: o.kid })
    .setIssuer(o.issuer ?? DEV_TOKEN_ISSUER)
    .setSubject(`system:serviceaccount:${o.namespace}:${o.serviceAccount}`)
    .setAudience([o.audience ?? DEFAULT_TOKEN_AUDIENCE])
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + ttlS)
    .sign(o.key);
}
