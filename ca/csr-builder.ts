import { OID } from './der/index.js';
import { bitString, implicitPrim, octetString, oid, seq, smallInteger, tlv } from './der/index.js';
import { signatureAlgorithmDer, signNow, type Signer } from './keys/index.js';

/**
 * A PKCS#10 request with an empty subject and one subjectAltName extension request holding
 * `dnsNames`, signed by `signer` (what a proxy sends to Certify).
 */
export function buildCsr(signer: Signer, options: { dnsNames: readonly string[] }): Buffer {
  const san = seq(...options.dnsNames.map((d) => implicitPrim(2, Buffer.from(d, 'latin1'))));
  const extensions = seq(seq(oid(OID.subjectAltName), octetString(san)));
  const attributes = tlv(0xa0, seq(oid(OID.extensionRequest), tlv(0x31, extensions)));
  const info = seq(smallInteger(0), seq(), signer.publicKeyDer, attributes);
  return seq(info, signatureAlgorithmDer(signer.algorithm), bitString(signNow(signer, info)));
}
