import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyStack,
  hitRates,
  parseCacheLookups,
  profilePid,
  stageTable,
  STAGES,
  type CpuProfile,
  type Frame,
  type Stage,
} from '../../../bin/bench/index.js';

const DIST = 'file:///work/x/dist';
const NM = 'file:///work/x/node_modules';
const GRPC = `${NM}/@grpc/grpc-js/build/src`;

/** "fn url", or a name alone (V8's "(garbage collector)", native functions) for a frame without a script. */
function frame(f: string): Frame {
  const i = f.indexOf(' ');
  return i < 0 || f.startsWith('(')
    ? { functionName: f, url: '' }
    : { functionName: f.slice(0, i), url: f.slice(i + 1) };
}

/** A stack written outermost first, as one reads a flame graph. */
function stack(...frames: string[]): Frame[] {
  return frames.map(frame).reverse();
}

// the grpc-js frames of a call's arrival, down to our handler
const ARRIVAL = [
  '(root)',
  'processTicksAndRejections node:internal/process/task_queues',
  'emit node:events',
  `handleEndEvent ${GRPC}/server-interceptors.js`,
  `onReceiveHalfClose ${GRPC}/server.js`,
  `certify ${DIST}/issuer/grpc/server.js`,
  `handle ${DIST}/issuer/grpc/server.js`,
  `certify ${DIST}/issuer/certify.js`,
];
// an await's continuation: the microtask queue, then the resumed function
const RESUMED = ['(root)', 'processTicksAndRejections node:internal/process/task_queues', 'runMicrotasks'];

const CASES: [string, Frame[], Stage][] = [
  [
    'CSR proof of possession',
    stack(
      ...ARRIVAL,
      `parse ${DIST}/issuer/certify.js`,
      `parseCsrLenient ${DIST}/ca/csr.js`,
      `readCsr ${DIST}/ca/csr.js`,
      `verifyCsrSignature ${DIST}/ca/csr-signature.js`,
      'verifyOneShot node:internal/crypto/sig',
    ),
    'csr',
  ],
  [
    'CSR key import (public-key.js decides nothing)',
    stack(
      ...ARRIVAL,
      `parse ${DIST}/issuer/certify.js`,
      `importKey ${DIST}/ca/csr-key.js`,
      `publicKeyFromEcPoint ${DIST}/ca/keys/public-key.js`,
      'getKeyObjectHandleFromJwk node:internal/crypto/keys',
    ),
    'csr',
  ],
  [
    'CSR cache key',
    stack(...ARRIVAL, `parse ${DIST}/issuer/certify.js`, 'digest node:internal/crypto/hash'),
    'csr',
  ],
  [
    'token signature, resumed after an await',
    stack(
      ...RESUMED,
      `verify ${DIST}/issuer/authn/jwt-verifier.js`,
      `verifyJwsSignature ${DIST}/issuer/authn/jws.js`,
      'verifyOneShot node:internal/crypto/sig',
    ),
    'token',
  ],
  [
    'token cache lookup in the LRU',
    stack(
      ...ARRIVAL,
      `authenticate ${DIST}/issuer/authn/caching-authenticator.js`,
      `get ${DIST}/issuer/lru.js`,
    ),
    'token',
  ],
  [
    'identity check',
    stack(
      ...RESUMED,
      `certify ${DIST}/issuer/certify.js`,
      `authorize ${DIST}/issuer/certify.js`,
      `authorizeLeaf ${DIST}/ca/policy.js`,
    ),
    'policy',
  ],
  [
    'leaf signature',
    stack(
      ...RESUMED,
      `certify ${DIST}/issuer/certify.js`,
      `issueLeaf ${DIST}/ca/credential.js`,
      `signLeaf ${DIST}/ca/credential.js`,
      `sign ${DIST}/ca/leaf-template.js`,
      `oid ${DIST}/ca/der/writer.js`,
    ),
    'sign',
  ],
  [
    'post-sign verification',
    stack(
      ...RESUMED,
      `issueLeaf ${DIST}/ca/credential.js`,
      `verifyLeaf ${DIST}/ca/credential.js`,
      `verifyIssuedLeaf ${DIST}/ca/chain.js`,
      'verifyOneShot node:internal/crypto/sig',
    ),
    'verify',
  ],
  [
    'log line written',
    stack(
      ...RESUMED,
      `handle ${DIST}/issuer/grpc/server.js`,
      `certified ${DIST}/issuer/grpc/call-log.js`,
      `LOG ${NM}/pino/lib/tools.js`,
      `write ${NM}/sonic-boom/index.js`,
      'writeSync node:fs',
      'writeString',
    ),
    'log',
  ],
  [
    'latency histogram',
    stack(
      ...RESUMED,
      `certified ${DIST}/issuer/grpc/call-log.js`,
      `observe ${NM}/prom-client/lib/histogram.js`,
    ),
    'metrics',
  ],
  [
    'issuance record',
    stack(...RESUMED, `record ${DIST}/issuer/cluster-worker.js`, `snapshot ${DIST}/issuer/ledger.js`),
    'metrics',
  ],
  [
    'answer headers',
    stack(
      ...RESUMED,
      `handle ${DIST}/issuer/grpc/server.js`,
      `respond ${GRPC}/server.js`,
      `sendMessage ${GRPC}/server-interceptors.js`,
      `sendMetadata ${GRPC}/server-interceptors.js`,
      'respond node:internal/http2/core',
      'processHeaders node:internal/http2/core',
    ),
    'transport-out',
  ],
  [
    'answer encoding (protobuf generated code has no URL)',
    stack(
      ...RESUMED,
      `serializeMessage ${GRPC}/server-interceptors.js`,
      `serialize ${NM}/@grpc/proto-loader/build/src/index.js`,
      'CertifyResponse$fromObject',
    ),
    'transport-out',
  ],
  [
    'request decoding',
    stack(
      ...RESUMED,
      `decompressAndMaybePush ${GRPC}/server-interceptors.js`,
      `requestDeserialize ${DIST}/issuer/grpc/server.js`,
      `deserialize ${NM}/@grpc/proto-loader/build/src/index.js`,
      'CertifyRequest$decode',
    ),
    'transport-in',
  ],
  [
    'new stream',
    stack(
      '(root)',
      'onSessionHeaders node:internal/http2/core',
      'emit node:events',
      `_streamHandler ${GRPC}/server.js`,
    ),
    'transport-in',
  ],
  [
    "the handler's abort signal",
    stack(
      ...ARRIVAL.slice(0, -1),
      'get signal node:internal/abort_controller',
      'createAbortSignal node:internal/abort_controller',
    ),
    'transport-in',
  ],
  ['garbage collection', stack('(root)', '(garbage collector)'), 'gc'],
  ['native, outside JavaScript', stack('(root)', '(program)'), 'other-js'],
  [
    'timers of nobody in particular',
    stack('(root)', 'processTimers node:internal/timers', 'listOnTimeout node:internal/timers'),
    'other-js',
  ],
  [
    'sources run through tsx',
    stack(...RESUMED, 'verifyLeaf file:///work/x/ca/credential.ts', 'verifyOneShot node:internal/crypto/sig'),
    'verify',
  ],
];

describe('bench stage rules', () => {
  for (const [what, frames, expected] of CASES)
    it(`${what} → ${expected}`, () => {
      assert.equal(classifyStack(frames), expected);
    });

  it('lists the stages in the table order of the issue', () => {
    assert.deepEqual(STAGES, [
      'transport-in',
      'csr',
      'token',
      'policy',
      'sign',
      'verify',
      'log',
      'metrics',
      'transport-out',
      'gc',
      'other-js',
      'other-threads',
    ]);
  });
});

/** A profile whose samples run the given stacks (innermost last in each), `us` apart from `start`. */
function profileOf(stacks: string[][], start: number, us: number): CpuProfile {
  const nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children: number[];
  }[] = [];
  const samples: number[] = [];
  for (const frames of stacks) {
    let parent: (typeof nodes)[number] | undefined;
    for (const f of frames) {
      const { functionName, url } = frame(f);
      const node = {
        id: nodes.length + 1,
        callFrame: { functionName, url, lineNumber: 0, columnNumber: 0 },
        children: [],
      };
      nodes.push(node);
      parent?.children.push(node.id);
      parent = node;
    }
    samples.push(nodes.length);
  }
  return {
    nodes,
    startTime: start,
    endTime: start + us * (samples.length + 1),
    samples,
    timeDeltas: samples.map(() => us),
  };
}

describe('bench stage table', () => {
  it('scales each process to its /proc main-thread CPU and adds the other threads', () => {
    const csr = ['(root)', `readCsr ${DIST}/ca/csr.js`];
    const gc = ['(root)', '(garbage collector)'];
    const idle = ['(root)', '(idle)'];
    // 4 samples of 1 ms in the window: 3 csr, 1 gc, plus idle ones that count for nothing
    const profile = profileOf([csr, csr, idle, csr, gc, idle], 1_000_000, 1000);
    const [col] = stageTable(
      [{ pid: 42, profile }],
      [
        {
          name: 'cold',
          startUs: 1_000_000,
          endUs: 1_010_000,
          certificates: 10,
          // real CPU is half the sampled time: the thread waited for a core half the time
          mainThreadCpuMsByPid: { '42': 2 },
          otherThreadsCpuMs: 1,
          profilerThreadsCpuMs: 0.5,
        },
      ],
    );
    assert.ok(col !== undefined);
    assert.equal(col.usPerCertificate.csr, 150);
    assert.equal(col.usPerCertificate.gc, 50);
    assert.equal(col.usPerCertificate['other-threads'], 100);
    assert.equal(col.usPerCertificate.sign, 0);
    assert.equal(col.totalUsPerCertificate, 300);
    assert.equal(col.sampledMs, 4);
  });

  it('reads the pid of a node --cpu-prof file name', () => {
    assert.equal(profilePid('/tmp/p/CPU.20261203.082834.30915.0.001.cpuprofile'), 30915);
    assert.equal(profilePid('other.cpuprofile'), undefined);
  });
});

describe('bench renewal-cache hit rates', () => {
  const metrics = (csrHit: number, csrMiss: number): string =>
    [
      '# HELP lanyard_renewal_cache_lookups_total lookups',
      '# TYPE lanyard_renewal_cache_lookups_total counter',
      `lanyard_renewal_cache_lookups_total{cache="csr",result="hit"} ${csrHit}`,
      `lanyard_renewal_cache_lookups_total{result="miss",cache="csr"} ${csrMiss}`,
      'lanyard_renewal_cache_lookups_total{cache="token",result="miss"} 5',
      'lanyard_requests_total{rpc="Certify",code="OK"} 9',
    ].join('\n');

  it('is the hits over the lookups between two readings, per cache', () => {
    const rates = hitRates(parseCacheLookups(metrics(10, 100)), parseCacheLookups(metrics(40, 110)));
    assert.deepEqual(rates, { csr: 75 });
  });

  it('is unknown when the server has no such counter', () => {
    assert.equal(parseCacheLookups('lanyard_requests_total{rpc="Certify",code="OK"} 9\n'), undefined);
    assert.equal(hitRates(undefined, undefined), undefined);
  });
});
