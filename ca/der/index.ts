// The small DER reader and writer of the hot path, and the OIDs they use.
export { OID, SIGNATURE_HASH } from './oids.js';
export {
  TAG,
  children,
  content,
  expectTag,
  readBitStringBytes,
  readIntegerBytes,
  readOid,
  readRoot,
  readSmallInteger,
  readTime,
  whole,
  type Tlv,
} from './reader.js';
export {
  TRUE,
  bitString,
  explicit,
  headLength,
  implicitPrim,
  octetString,
  oid,
  seq,
  smallInteger,
  time,
  timeText,
  tlv,
  unsignedInteger,
  writeHead,
} from './writer.js';
