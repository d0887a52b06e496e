export { startDevEnvironment } from './dev.js';
