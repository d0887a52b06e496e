// Human and JSON reports of certificates and CSRs (`lanyard inspect`, bundle listings).
export {
  inspectBytes,
  certificateReport,
  type InspectReport,
  type CertificateReport,
  type CsrReport,
  type ExpiryState,
} from './inspect.js';
export { formatReport } from './inspect-text.js';
export { inspectFiles, type FileInspection } from './inspect-files.js';
