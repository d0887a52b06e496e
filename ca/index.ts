// The curated public API of the PKI core. issuer/ and trust-bundles/ import only this module.
export { type Clock, type Scheduler, systemClock, systemScheduler, nowMs } from './clock.js';
export {
  type CaErrorCode,
  type EncodingErrorCode,
  type CsrErrorCode,
  type InvalidRequestErrorCode,
  type PolicyErrorCode,
  type CredentialErrorCode,
  type FileErrorCode,
  LanyardError,
  InvalidRequestError,
  PolicyError,
  CredentialError,
  FileError,
  UsageError,
  InternalError,
  isLanyardError,
  restateError,
} from './errors.js';
export {
  decodePem,
  decodePemOf,
  decodeOnePem,
  encodePem,
  looksLikePem,
  type PemBlock,
  type PemLabel,
} from './pem.js';
export { writeFileAtomic, writeFilesAtomic, type AtomicWriteOptions } from './fs.js';
export { parseDuration, formatDuration } from './duration.js';
export {
  KEY_ALGORITHMS,
  EC_ALGORITHMS,
  type KeyAlgorithm,
  type EcKeyAlgorithm,
  type SignatureAlgorithm,
  parseKeyAlgorithm,
  generateKey,
  keyAlgorithmOf,
} from './keys/algorithms.js';
export { type Signer, type SyncSigner, createKeyObjectSigner } from './keys/signer.js';
export { type SignerDescription, describeSigner } from './keys/describe.js';
export {
  type KeyStore,
  type FileKeyStore,
  type StagedKey,
  createFileKeyStore,
  createMemoryKeyStore,
  parsePrivateKeyPem,
} from './keys/store.js';
export {
  parseCertificate,
  parseCertificatesPem,
  describeCertificate,
  KEY_USAGE,
  type CertificateInfo,
} from './certificate.js';
export {
  parseCsr,
  parseCsrLenient,
  MAX_CSR_BYTES,
  MAX_RSA_BITS,
  MAX_RSA_EXPONENT_BITS,
  type ParsedCsr,
  type LenientCsr,
  type CsrKeyType,
} from './csr.js';
export { quoteForMessage, quoteListForMessage, MAX_QUOTED_CHARS } from './quote.js';
export {
  type IdentityDomain,
  type ServiceAccountRef,
  type WorkloadIdentity,
  DEFAULT_IDENTITY_DOMAIN,
  isDns1123Label,
  isDns1123Subdomain,
  validateIdentityDomain,
  workloadIdentity,
  parseIdentity,
} from './identity.js';
export {
  DEFAULTS,
  randomSerial,
  keyIdentifier,
  createAnchorCertificate,
  createIssuerCertificate,
  type AnchorProfile,
  type IssuerProfile,
} from './profiles.js';
export {
  type LeafPolicy,
  type LeafKeyType,
  DEFAULT_LEAF_POLICY,
  checkCsrNames,
  checkKeyAllowed,
  leafValidity,
  judgeCsrKey,
  requestLeaf,
  authorizeLeaf,
  type LeafRequestNames,
  type AuthorizedLeafRequest,
  type JudgedCsrKey,
} from './policy.js';
export { createLeafTemplate, type LeafTemplate, type LeafRequest, type SignedLeaf } from './leaf-template.js';
export { createChainVerifier, verifyChain, checkValidity, type ChainVerifier } from './chain.js';
export {
  createIssuerCredential,
  snapshotIssuer,
  type IssuerSnapshot,
  issueLeaf,
  issueForCsr,
  type IssuerCredential,
  type IssuedLeaf,
  type CredentialInput,
} from './credential.js';
export {
  readIssuerDir,
  readPemFile,
  ISSUER_FILES,
  ANCHOR_FILES,
  loadAnchorDir,
  loadIssuerCredential,
  issuerCredentialFromPem,
  MAX_PEM_FILE_BYTES,
  type IssuerDirFiles,
} from './issuer-dir.js';
export {
  fingerprint,
  inspectBytes,
  certificateReport,
  type InspectReport,
  type CertificateReport,
  type ExpiryState,
} from './inspect.js';
export { formatReport } from './inspect-text.js';
export {
  runCli,
  reportError,
  collect,
  durationOption,
  EXIT,
  ExitStatus,
  type CliContext,
} from './cli-kit.js';
export { buildCsr } from './csr-builder.js';
export { createAnchorFiles, createIssuerFiles } from './ca-files.js';
