import { createPublicKey } from 'node:crypto';
import { stringify } from 'yaml';
import {
  InvalidRequestError,
  isDns1123Label,
  isDns1123Subdomain,
  parseCertificate,
  type CertificateInfo,
  FileError,
} from '../ca/index.js';
import { createTrustBundle, type TrustBundle } from './bundle.js';

export const BUNDLE_FORMATS = ['pem', 'spiffe', 'configmap', 'istio-configmap'] as const;
export type BundleFormat = (typeof BUNDLE_FORMATS)[number];

export const CONFIGMAP_DEFAULTS = Object.freeze({
  name: 'linkerd-identity-trust-roots',
  namespace: 'linkerd',
  key: 'ca-bundle.crt',
});

/**
 * Istio's root ConfigMap: istio-agent and ztunnel read the CA's roots from ConfigMap
 * `istio-ca-root-cert`, key `root-cert.pem` (in every workload namespace; istiod's own copy lives in
 * `istio-system`). The key is fixed: the proxies read no other.
 */
export const ISTIO_CONFIGMAP_DEFAULTS = Object.freeze({
  name: 'istio-ca-root-cert',
  namespace: 'istio-system',
  key: 'root-cert.pem',
});

/** `ca-bundle.crt`: the anchors as PEM, in the bundle's deterministic order. */
export function toPemBundle(bundle: TrustBundle): string {
  return bundle.toPem();
}

export interface SpiffeJwk {
  readonly use: 'x509-svid';
  readonly kty: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly n?: string;
  readonly e?: string;
  readonly x5c: readonly [string];
}

export interface SpiffeBundleDocument {
  readonly keys: readonly SpiffeJwk[];
  readonly spiffe_sequence: number;
  readonly spiffe_refresh_hint: number;
}

/**
 * The SPIFFE trust bundle (SPIFFE Trust Domain and Bundle §4): a JWK Set where each anchor is a key
 * with `use: "x509-svid"` and `x5c` holding exactly one DER certificate (base64, not base64url).
 */
export function toSpiffeBundle(
  bundle: TrustBundle,
  options: { sequence: number; refreshHintSeconds: number },
): SpiffeBundleDocument {
  return {
    keys: bundle.anchors.map((a) => {
      const jwk = createPublicKey({ key: a.certificate.spki, format: 'der', type: 'spki' }).export({
        format: 'jwk',
      });
      return {
        use: 'x509-svid' as const,
        kty: String(jwk.kty),
        ...(jwk.crv !== undefined ? { crv: jwk.crv } : {}),
        ...(jwk.x !== undefined ? { x: jwk.x } : {}),
        ...(jwk.y !== undefined ? { y: jwk.y } : {}),
        ...(jwk.n !== undefined ? { n: jwk.n } : {}),
        ...(jwk.e !== undefined ? { e: jwk.e } : {}),
        x5c: [a.certificate.der.toString('base64')] as const,
      };
    }),
    spiffe_sequence: options.sequence,
    spiffe_refresh_hint: options.refreshHintSeconds,
  };
}

/** Reads a SPIFFE bundle's x509-svid anchors back (other key uses are ignored, as the spec says). */
export function parseSpiffeBundle(text: string, what: string): TrustBundle {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new FileError('ERR_FILE_INVALID', `${what}: not JSON`);
  }
  const keys = isObject(doc) ? doc.keys : undefined;
  if (!Array.isArray(keys)) throw new FileError('ERR_FILE_INVALID', `${what}: no "keys" array`);
  const certs: CertificateInfo[] = [];
  for (const k of keys as unknown[]) {
    if (!isObject(k)) throw new FileError('ERR_FILE_INVALID', `${what}: a key is not a JSON object`);
    if (k.use !== 'x509-svid') continue;
    if (!Array.isArray(k.x5c) || k.x5c.length !== 1 || typeof k.x5c[0] !== 'string') {
      throw new FileError(
        'ERR_FILE_INVALID',
        `${what}: an x509-svid key must have exactly one x5c certificate`,
      );
    }
    certs.push(parseCertificate(Buffer.from(k.x5c[0], 'base64')));
  }
  return createTrustBundle(certs);
}

/** A Kubernetes ConfigMap manifest holding the PEM bundle under `key`. */
export function toConfigMap(
  bundle: TrustBundle,
  options: { name?: string; namespace?: string; key?: string } = {},
): string {
  const name = options.name ?? CONFIGMAP_DEFAULTS.name;
  const namespace = options.namespace ?? CONFIGMAP_DEFAULTS.namespace;
  const key = options.key ?? CONFIGMAP_DEFAULTS.key;
  if (!isDns1123Subdomain(name))
    throw new InvalidRequestError(
      'ERR_INVALID_REQUEST',
      `ConfigMap name "${name}" is not a DNS-1123 subdomain`,
    );
  if (!isDns1123Label(namespace))
    throw new InvalidRequestError('ERR_INVALID_REQUEST', `namespace "${namespace}" is not a DNS-1123 label`);
  // Kubernetes IsConfigMapKey: the character set, at most 253 characters, and not ".", ".." or "..*"
  if (!/^[-._a-zA-Z0-9]{1,253}$/.test(key) || key === '.' || key.startsWith('..'))
    throw new InvalidRequestError('ERR_INVALID_REQUEST', `ConfigMap key "${key}" is not a valid data key`);
  return stringify(
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace, labels: { 'app.kubernetes.io/part-of': 'lanyard' } },
      data: { [key]: bundle.toPem() },
    },
    { lineWidth: 0 },
  );
}

/** ConfigMap `istio-ca-root-cert` with every anchor of the bundle concatenated under `root-cert.pem`. */
export function toIstioConfigMap(
  bundle: TrustBundle,
  options: { name?: string; namespace?: string } = {},
): string {
  return toConfigMap(bundle, {
    name: options.name ?? ISTIO_CONFIGMAP_DEFAULTS.name,
    namespace: options.namespace ?? ISTIO_CONFIGMAP_DEFAULTS.namespace,
    key: ISTIO_CONFIGMAP_DEFAULTS.key,
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What `serializeBundle` needs beyond the bundle; each format reads only its own fields. */
export interface BundleFormatOptions {
  /**
   * configmap: metadata.name, metadata.namespace, data key (CONFIGMAP_DEFAULTS when absent);
   * istio-configmap: metadata.name and metadata.namespace (ISTIO_CONFIGMAP_DEFAULTS), the key is fixed
   */
  readonly name?: string;
  readonly namespace?: string;
  readonly key?: string;
  /** spiffe: spiffe_sequence (default 1) and spiffe_refresh_hint in seconds (default 300) */
  readonly sequence?: number;
  readonly refreshHintSeconds?: number;
}

/** The bundle as a file's text in `format`: PEM, a SPIFFE bundle (JSON + newline) or a ConfigMap (YAML). */
export function serializeBundle(b: TrustBundle, format: BundleFormat, o: BundleFormatOptions = {}): string {
  switch (format) {
    case 'pem':
      return toPemBundle(b);
    case 'spiffe':
      return `${JSON.stringify(toSpiffeBundle(b, { sequence: o.sequence ?? 1, refreshHintSeconds: o.refreshHintSeconds ?? 300 }), null, 2)}\n`;
    case 'configmap':
      return toConfigMap(b, o);
    case 'istio-configmap':
      if (o.key !== undefined && o.key !== ISTIO_CONFIGMAP_DEFAULTS.key)
        throw new InvalidRequestError(
          'ERR_INVALID_REQUEST',
          `Istio reads its roots from key "${ISTIO_CONFIGMAP_DEFAULTS.key}" only`,
        );
      return toIstioConfigMap(b, o);
  }
}
