export {
  HOSTILE_CSR_DESCRIPTIONS,
  HOSTILE_CSR_KINDS,
  hostileCsr,
  type HostileCsrKind,
} from './hostile-csr.js';
export { testPki } from './pki.js';
export { ProxyCertifyError, proxyCertify, type ProxyCertificate } from './proxy-client.js';
