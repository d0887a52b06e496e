// Material at rest: issuer and anchor directory layouts, the files `anchor create`, `issuer create` and
// `leaf issue` write, bounded PEM reads and atomic writes (temp file, fsync, rename).
export { readPemFile, readTextFile, MAX_PEM_FILE_BYTES } from '../pem-file.js';
export { writeFileAtomic, writeFilesAtomic, type AtomicWriteOptions, type AtomicFile } from '../fs.js';
export {
  readIssuerDir,
  ISSUER_FILES,
  ANCHOR_FILES,
  loadAnchorDir,
  readAnchorCertificate,
  loadIssuerCredential,
  issuerCredentialFromPem,
  type IssuerDirFiles,
} from './issuer-dir.js';
export {
  createAnchorFiles,
  createIssuerFiles,
  createIssuerFilesFromAnchorDir,
  createCrossCertificateFile,
  type CrossCertificateRequest,
  type CaFilesOptions,
  type CreatedCa,
} from './ca-files.js';
export { issueLeafFile, offlineLeafPolicy, type LeafFileRequest } from './leaf-files.js';
