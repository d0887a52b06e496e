import type { Signer } from '../../ca/index.js';

/**
 * A Signer that behaves like a key held elsewhere (an HSM, a KMS): `sign` answers with a Promise on a
 * later turn and with a plain Uint8Array, and nothing but the seam's three members is visible.
 */
export function remoteSigner(inner: Signer): Signer {
  return Object.freeze({
    algorithm: inner.algorithm,
    publicKeyDer: inner.publicKeyDer,
    sign: async (tbs: Uint8Array): Promise<Uint8Array> => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return new Uint8Array(await inner.sign(tbs));
    },
  });
}
