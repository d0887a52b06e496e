export { createCertifyClient, describeError, errorCode } from './agent.js';
