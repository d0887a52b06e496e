// Hostile `metadata` Structs on CreateCertificate, as raw protobuf bytes (no encoder of ours between):
// nested deeper than any client needs, or larger than the message limit. Each is refused with a status
// (INVALID_ARGUMENT; RESOURCE_EXHAUSTED above the limit), never INTERNAL, and the server keeps serving.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { DEFAULT_IDENTITY_DOMAIN, DEFAULT_LEAF_POLICY, workloadIdentity } from '../../ca/index.js';
import { createStaticCredentialSource } from '../../issuer/credentials.js';
import {
  CREATE_CERTIFICATE_METHOD,
  createIstioCaHandlers,
  loadIstioCaService,
} from '../../issuer/grpc/istio-server.js';
import { GRPC_SERVER_OPTIONS } from '../../issuer/grpc/server.js';
import { createIstioCertifier } from '../../issuer/istio-certify.js';
import { createIssuerMetrics } from '../../issuer/metrics.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { istioCsr } from '../support/istio-csr.js';
import { csrKey, testPki } from '../support/pki.js';

const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
/** a length-delimited field (wire type 2) */
const field = (no: number, body: Buffer): Buffer =>
  Buffer.concat([varint((no << 3) | 2), varint(body.length), body]);

/** google.protobuf.Value{list_value: ListValue{values: [ … ]}} nested `depth` times around an empty Value */
function nestedValue(depth: number): Buffer {
  let v: Buffer = Buffer.alloc(0);
  for (let i = 0; i < depth; i++) v = field(6, field(1, v));
  return v;
}
/** Struct{fields: {key: value}} */
const struct = (entries: [string, Buffer][]): Buffer =>
  Buffer.concat(entries.map(([k, v]) => field(1, Buffer.concat([field(1, Buffer.from(k)), field(2, v)]))));
/** Value{string_value: s} */
const stringValue = (s: string): Buffer => field(3, Buffer.from(s));

/** IstioCertificateRequest{csr (1), metadata (4)} */
const request = (csr: string, metadata: Buffer): Buffer =>
  Buffer.concat([field(1, Buffer.from(csr)), field(4, metadata)]);

describe('CreateCertificate with a hostile metadata Struct', () => {
  let server: grpc.Server;
  let client: grpc.Client;
  let csr: string;

  before(async () => {
    const clock = new FakeClock('2026-06-01T00:00:00Z');
    const pki = await testPki({ now: clock.now(), issuerLifetimeMs: 48 * HOUR, clusters: ['east'] });
    const logger = pino({ level: 'silent' });
    const metrics = createIssuerMetrics({ defaultMetrics: false });
    const certify = createIstioCertifier({
      clock,
      credentials: createStaticCredentialSource(pki.issuers.east?.credential),
      authenticator: scriptedAuthenticator(),
      policy: DEFAULT_LEAF_POLICY,
      domain: DEFAULT_IDENTITY_DOMAIN,
      maxTtlMs: 24 * HOUR,
    });
    server = new grpc.Server(GRPC_SERVER_OPTIONS);
    server.addService(
      loadIstioCaService(),
      createIstioCaHandlers({ certify, logger, metrics, wallClock: clock, cluster: 'east' }),
    );
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(err);
        else resolve(p);
      });
    });
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    csr = (await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] })).toString();
  });

  after(() => {
    client.close();
    server.forceShutdown();
  });

  /** sends raw request bytes; resolves the status name */
  function raw(bytes: Buffer): Promise<string> {
    const md = new grpc.Metadata();
    md.set('authorization', 'Bearer sa:default:web');
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        CREATE_CERTIFICATE_METHOD,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        md,
        (err) => {
          resolve(err ? (grpc.status[err.code] ?? String(err.code)) : 'OK');
        },
      );
    });
  }

  it('answers a call with a small metadata Struct (the raw encoding is right)', async () => {
    assert.equal(await raw(request(csr, struct([['CertSigner', stringValue('')]]))), 'OK');
  });

  it('ignores a metadata Struct nested a few levels (the request decodes: it is not refused)', async () => {
    for (const depth of [1, 10])
      assert.equal(await raw(request(csr, struct([['x', nestedValue(depth)]]))), 'OK');
  });

  // protobufjs's decoder refuses nesting beyond its recursion limit (Reader.recursionLimit): the
  // message does not decode, ERR_INVALID_REQUEST
  for (const depth of [64, 1000, 8000]) {
    it(`refuses metadata nested ${depth} levels deep with INVALID_ARGUMENT`, async () => {
      const bytes = request(csr, struct([['x', nestedValue(depth)]]));
      assert.ok(bytes.length < 64 * 1024, `${bytes.length} bytes: under the message limit`);
      assert.equal(await raw(bytes), 'INVALID_ARGUMENT');
    });
  }

  it('refuses a metadata Struct above the message limit with RESOURCE_EXHAUSTED', async () => {
    const entries: [string, Buffer][] = [];
    for (let i = 0; i < 4000; i++) entries.push([`k${i}`, stringValue('v'.repeat(16))]);
    const bytes = request(csr, struct(entries));
    assert.ok(bytes.length > 64 * 1024);
    assert.equal(await raw(bytes), 'RESOURCE_EXHAUSTED');
  });

  it('still answers afterwards', async () => {
    assert.equal(await raw(request(csr, struct([]))), 'OK');
  });
});
