export { istioCsr, type IstioClientStyle, type IstioCsr, type IstioKeyKind } from './csr.js';
export {
  checkIstioAnswer,
  pemCertificates,
  uriSans,
  IstioAnswerError,
  type IstioAnswer,
  type IstioAnswerProblem,
} from './answer.js';
export {
  istioCreateCertificate,
  istioRequest,
  rawCreateCertificate,
  istioCaDefinition,
  ISTIO_CA_PROTO,
  ISTIO_CA_SERVICE,
  ISTIO_CA_METHOD,
  type IstioClientOptions,
  type IstioTransportOptions,
  type IstioCertificate,
  type IstioCertificateRequestObject,
} from './client.js';
export { opensslVerifyIstioChain } from './openssl-check.js';
export { compareIstioCaProtos } from './proto-compare.js';
