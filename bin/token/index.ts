export {
  createSigningKeyDir,
  loadSigningKeyDir,
  loadOrCreateSigningKeyDir,
  mintServiceAccountToken,
  DEV_TOKEN_ISSUER,
  SIGNING_KEY_FILES,
  type MintOptions,
  type SigningKey,
} from './token-mint.js';
