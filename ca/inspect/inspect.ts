import { fingerprint, parseCertificate, KEY_USAGE, type CertificateInfo } from '../certificate.js';
import { parseCsr } from '../csr.js';
import { formatDuration } from '../duration.js';
import { TAG, children, readRoot } from '../der/index.js';
import { InvalidRequestError, isLanyardError, FileError } from '../errors.js';
import { keyAlgorithmOf } from '../keys/index.js';
import { decodePem, looksLikePem } from '../pem.js';
import { bytes, x509 } from '../x509.js';

export type ExpiryState = 'valid' | 'expiring-soon' | 'expired' | 'not-yet-valid';

export interface CertificateReport {
  readonly kind: 'certificate';
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** milliseconds until notAfter (negative once expired) */
  readonly timeLeftMs: number;
  readonly timeLeft: string;
  readonly state: ExpiryState;
  readonly keyType: string;
  readonly signatureAlgorithm: string;
  readonly dnsNames: readonly string[];
  readonly uris: readonly string[];
  readonly isCa: boolean;
  readonly pathLen: number | null;
  readonly keyUsage: readonly string[];
  readonly extendedKeyUsage: readonly string[];
  readonly subjectKeyId: string | null;
  readonly authorityKeyId: string | null;
  /** permitted DNS and URI subtrees, excluded ones, and subtrees of other forms (which Lanyard does not evaluate) */
  readonly nameConstraints: {
    readonly dns: readonly string[];
    readonly uri: readonly string[];
    readonly excludedDns: readonly string[];
    readonly excludedUri: readonly string[];
    readonly other: readonly string[];
  } | null;
  /** OIDs of critical extensions Lanyard does not process (such a certificate is refused in a chain) */
  readonly unsupportedCriticalExtensions: readonly string[];
  readonly selfSigned: boolean;
  readonly sha256Fingerprint: string;
}

export interface CsrReport {
  readonly kind: 'csr';
  readonly subject: string;
  readonly keyType: string;
  readonly dnsNames: readonly string[];
  readonly uris: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly emails: readonly string[];
  readonly signatureValid: true;
  readonly sha256Fingerprint: string;
}

export type InspectReport = CertificateReport | CsrReport;

/** "Expiring soon": less than this much left, or less than a fifth of the total lifetime. */
export const SOON_MS = 30 * 86_400_000;

const EKU_NAMES: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
};

/** Everything in a file: PEM certificates, bundles and CSRs, or one DER certificate or CSR. */
export function inspectBytes(data: Uint8Array, now: Date): InspectReport[] {
  if (looksLikePem(data)) {
    const blocks = decodePem(Buffer.from(data).toString('utf8'));
    return blocks.map((b) => {
      if (b.label === 'CERTIFICATE') return certificateReport(parseCertificate(b.der), now);
      if (b.label === 'CERTIFICATE REQUEST') return csrReport(b.der);
      throw new InvalidRequestError(
        'ERR_PEM_UNEXPECTED_TYPE',
        `cannot inspect a "${b.label}" block (private keys are never printed)`,
      );
    });
  }
  let certError: unknown;
  try {
    return [certificateReport(parseCertificate(data), now)];
  } catch (err) {
    certError = err;
  }
  try {
    return [csrReport(Buffer.from(data))];
  } catch (csrError) {
    // The most specific reason wins: a CSR-shaped file with a bad signature or key says so, a v3
    // certificate-shaped one gets the certificate parser's reason.
    if (isLanyardError(csrError) && !GENERIC_CSR_CODES.has(csrError.code)) throw csrError;
    if (certificateShaped(data) && isLanyardError(certError)) throw certError;
    throw new FileError('ERR_FILE_INVALID', 'not a PEM file, a DER certificate or a DER CSR', {
      cause: certError,
    });
  }
}

const GENERIC_CSR_CODES: ReadonlySet<string> = new Set([
  'ERR_CSR_MALFORMED',
  'ERR_DER_MALFORMED',
  'ERR_DER_TRUNCATED',
  'ERR_DER_TRAILING_DATA',
]);

/** SEQUENCE { SEQUENCE { [0] version … } … }: the start of a v3 certificate (a CSR starts with INTEGER 0). */
function certificateShaped(data: Uint8Array): boolean {
  try {
    const tbs = children(readRoot(Buffer.from(data)))[0];
    return tbs?.tag === TAG.SEQUENCE && children(tbs)[0]?.tag === 0xa0;
  } catch {
    return false;
  }
}

/** Names of the attribute types @peculiar/x509 prints as OIDs (anchors carry serialNumber since #13). */
const EXTRA_NAMES = { serialNumber: '2.5.4.5' };

/** A Name as text, `CN=…, serialNumber=…` (as node:crypto prints it). */
function nameText(name: x509.Name): string {
  return new x509.Name(name.toArrayBuffer(), EXTRA_NAMES).toString();
}

export function certificateReport(c: CertificateInfo, now: Date): CertificateReport {
  const cert = new x509.X509Certificate(bytes(c.der));
  const lifetime = c.notAfter.getTime() - c.notBefore.getTime();
  const left = c.notAfter.getTime() - now.getTime();
  const state: ExpiryState =
    now.getTime() < c.notBefore.getTime()
      ? 'not-yet-valid'
      : left < 0
        ? 'expired'
        : left < Math.min(SOON_MS, lifetime / 5)
          ? 'expiring-soon'
          : 'valid';
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  return {
    kind: 'certificate',
    subject: nameText(cert.subjectName),
    issuer: nameText(cert.issuerName),
    serial: c.serialHex,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    timeLeftMs: left,
    timeLeft: formatDuration(left),
    state,
    keyType: describeKey(c),
    signatureAlgorithm: signatureName(c.signatureAlgorithm),
    dnsNames: c.dnsNames,
    uris: c.uris,
    isCa: c.isCa,
    pathLen: c.pathLen ?? null,
    keyUsage: keyUsageNames(c.keyUsage),
    extendedKeyUsage: (eku?.usages ?? []).map((u) => EKU_NAMES[String(u)] ?? String(u)),
    subjectKeyId: c.subjectKeyId?.toString('hex') ?? null,
    authorityKeyId: c.authorityKeyId?.toString('hex') ?? null,
    nameConstraints: c.hasNameConstraints
      ? {
          dns: c.permittedDns,
          uri: c.permittedUri,
          excludedDns: c.excludedDns,
          excludedUri: c.excludedUri,
          other: c.unevaluatedNameConstraints.map(
            (u) => `${u.subtrees} ${u.form}${u.minMax ? ' (with minimum/maximum)' : ''}`,
          ),
        }
      : null,
    unsupportedCriticalExtensions: c.unsupportedCriticalExtensions,
    selfSigned: c.subjectDer.equals(c.issuerDer),
    sha256Fingerprint: fingerprint(c.der),
  };
}

function csrReport(der: Buffer): CsrReport {
  const csr = parseCsr(der);
  return {
    kind: 'csr',
    subject: csr.commonName !== undefined ? `CN=${csr.commonName}` : '',
    keyType: csr.keyType,
    dnsNames: csr.dnsNames,
    uris: csr.uris,
    ipAddresses: csr.ipAddresses,
    emails: csr.emails,
    signatureValid: true,
    sha256Fingerprint: fingerprint(csr.der),
  };
}

/** SHA-256 of the DER, upper-case hex pairs joined by ':' (as `openssl x509 -fingerprint -sha256`). */

function describeKey(c: CertificateInfo): string {
  try {
    const alg = keyAlgorithmOf(c.publicKey);
    return alg.startsWith('p') ? `ECDSA ${alg === 'p256' ? 'P-256' : 'P-384'}` : `RSA ${alg.slice(3)}`;
  } catch {
    return c.publicKey.asymmetricKeyType ?? 'unknown';
  }
}

function keyUsageNames(bits: number | undefined): string[] {
  if (bits === undefined) return [];
  const names: string[] = [];
  if (bits & KEY_USAGE.digitalSignature) names.push('digitalSignature');
  if (bits & 2) names.push('nonRepudiation');
  if (bits & 4) names.push('keyEncipherment');
  if (bits & 8) names.push('dataEncipherment');
  if (bits & 16) names.push('keyAgreement');
  if (bits & KEY_USAGE.keyCertSign) names.push('keyCertSign');
  if (bits & KEY_USAGE.cRLSign) names.push('cRLSign');
  return names;
}

function signatureName(oid: string): string {
  const names: Record<string, string> = {
    '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
    '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
    '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  };
  return names[oid] ?? oid;
}
