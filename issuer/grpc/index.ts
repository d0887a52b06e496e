export {
  GRPC_SERVER_OPTIONS,
  createIdentityHandlers,
  loadIdentityService,
  type CertifyRequestMessage,
  type CertifyResponseMessage,
  CERTIFY_METHOD,
} from './server.js';
export { createAdmissionControl, type AdmissionControl } from './admission.js';
export { createRejectionLog, type RejectionLog } from './rejection-log.js';
export { createTlsListener, type TlsListener } from './tls-listener.js';
export { CREATE_CERTIFICATE_METHOD, createIstioCaHandlers, loadIstioCaService } from './istio-server.js';
