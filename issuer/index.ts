export { createCertifier, type Certify } from './certify.js';
export { createStaticCredentialSource } from './credentials.js';
export { buildIssuerConfig, parseHostPort, SERVE_DEFAULTS, type ServeFlags } from './config.js';
export { createIssuerLogger, createLogger, flushLogLines } from './logger.js';
export { runIssuer } from './cluster.js';
export { DEFAULT_RENEW_SPREAD_MS } from './renewal-hint.js';
export { startIssuer, type RunningIssuer } from './main.js';
