// Wire compatibility of two copies of Istio's CA proto (this folder's, written from istio/api, and the
// server's): for the request and response messages every field the client sends or reads must have
// the same number, type and label on both sides, and the service path must be the same. Returns the
// differences as lines; [] means compatible. The server may have fewer optional response fields
// (root_cert = 2 is newer and ignored by the agents).
import * as protoLoader from '@grpc/proto-loader';

interface FieldDescriptor {
  name: string;
  number: number;
  type: string;
  label: string;
  typeName: string;
}
interface MessageDescriptor {
  type: { field: FieldDescriptor[]; reservedRange: { start: number; end: number }[] };
}

const PACKAGE = 'istio.v1.auth';
/** the fields a client writes or reads: request fields 1, 3, 4 and response cert_chain = 1 */
const CHECKED = {
  IstioCertificateRequest: ['csr', 'validity_duration', 'metadata'],
  IstioCertificateResponse: ['cert_chain'],
} as const;

function describeField(f: FieldDescriptor | undefined): string {
  return f === undefined ? 'absent' : `${String(f.number)} ${f.type} ${f.label} ${f.typeName}`.trim();
}

export function compareIstioCaProtos(clientProto: string, serverProto: string): string[] {
  const opts = { keepCase: true };
  const a = protoLoader.loadSync(clientProto, opts);
  const b = protoLoader.loadSync(serverProto, opts);
  const problems: string[] = [];
  for (const [message, fields] of Object.entries(CHECKED)) {
    const ma = a[`${PACKAGE}.${message}`] as unknown as MessageDescriptor | undefined;
    const mb = b[`${PACKAGE}.${message}`] as unknown as MessageDescriptor | undefined;
    if (ma === undefined || mb === undefined) {
      problems.push(`${message}: missing in the ${ma === undefined ? 'client' : 'server'} proto`);
      continue;
    }
    for (const name of fields) {
      const fa = describeField(ma.type.field.find((f) => f.name === name));
      const fb = describeField(mb.type.field.find((f) => f.name === name));
      if (fa !== fb) problems.push(`${message}.${name}: client ${fa}, server ${fb}`);
    }
    // a number the server uses for something the client does not know would be read as unknown
    for (const f of mb.type.field) {
      const same = ma.type.field.find((x) => x.number === f.number);
      if (same !== undefined && same.name !== f.name)
        problems.push(
          `${message}: field ${String(f.number)} is ${same.name} in the client, ${f.name} in the server`,
        );
    }
  }
  const req = b[`${PACKAGE}.IstioCertificateRequest`] as unknown as MessageDescriptor | undefined;
  if (req !== undefined && req.type.field.some((f) => f.number === 2))
    problems.push('IstioCertificateRequest: field 2 (removed subject_id) is reused by the server');
  const sa = a[`${PACKAGE}.IstioCertificateService`] as Record<string, { path: string }> | undefined;
  const sb = b[`${PACKAGE}.IstioCertificateService`] as Record<string, { path: string }> | undefined;
  if (sa?.CreateCertificate?.path !== sb?.CreateCertificate?.path)
    problems.push(
      `CreateCertificate path: client ${String(sa?.CreateCertificate?.path)}, server ${String(sb?.CreateCertificate?.path)}`,
    );
  return problems;
}
