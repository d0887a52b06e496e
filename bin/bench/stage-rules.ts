// Which stage of a Certify call a CPU profile sample belongs to, from its stack: the innermost frame
// that a rule decides wins. Rules key on script URLs (npm package, node core module, Lanyard file) and,
// inside a few Lanyard files, on function names fixed by the issue #15 contract (issuer/certify.ts
// parse/authorize, ca signLeaf/verifyLeaf/issueLeaf, issuer/grpc/server.ts requestDeserialize/refuse).
// Frames no rule decides (node:crypto, node:buffer, events, streams, the DER reader/writer, the LRU,
// public-key import, natives such as protobuf's generated code) pass to their caller.

export const STAGES = [
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
] as const;
export type Stage = (typeof STAGES)[number];

/** One frame of a sample's stack. */
export interface Frame {
  readonly functionName: string;
  readonly url: string;
}

/** A rule's verdict on one frame: a stage, 'transport' (in or out, from the rest of the stack), or none. */
type Verdict = Stage | 'transport' | undefined;

const LOG_PACKAGES = new Set([
  'pino',
  'sonic-boom',
  'thread-stream',
  'pino-std-serializers',
  'fast-redact',
  'quick-format-unescaped',
  'safe-stable-stringify',
  'atomic-sleep',
  'on-exit-leak-free',
]);
const METRICS_PACKAGES = new Set(['prom-client', 'tdigest', 'bintrees']);
const TRANSPORT_PACKAGES = new Set(['@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'long']);
const TOKEN_PACKAGES = new Set(['jose']);

/**
 * grpc-js and node:http2 functions of the answer path: the unary callback (grpc-js server.js
 * `respond`), message and metadata sending, encoding, trailers, the write completions of the socket and
 * the stream's close.
 */
const ANSWER_PATH = new Set([
  'respond',
  'sendMessage',
  'sendMetadata',
  'sendStatus',
  'serializeMessage',
  'sendUnaryMessage',
  'onWriteComplete',
  'writeGeneric',
  'writevGeneric',
  'afterWriteDispatched',
  'writeCallback',
  'sendTrailers',
  'onStreamTrailers',
  'finishSendTrailers',
  'onStreamClose',
]);

/** The npm package of a node_modules URL (scoped packages keep their scope), else undefined. */
function packageName(url: string): string | undefined {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm < 0) return undefined;
  const parts = url.slice(nm + '/node_modules/'.length).split('/');
  const first = parts[0] ?? '';
  return first.startsWith('@') ? `${first}/${parts[1] ?? ''}` : first;
}

function packageVerdict(pkg: string): Verdict {
  if (LOG_PACKAGES.has(pkg)) return 'log';
  if (METRICS_PACKAGES.has(pkg)) return 'metrics';
  if (TRANSPORT_PACKAGES.has(pkg) || pkg.startsWith('@protobufjs/')) return 'transport';
  if (TOKEN_PACKAGES.has(pkg)) return 'token';
  return undefined;
}

function coreVerdict(url: string): Verdict {
  // a module loaded while the load runs (lazily imported code)
  if (url.startsWith('node:internal/modules/')) return 'other-js';
  if (url.startsWith('node:internal/http2/') || url === 'node:http2') return 'transport';
  if (url === 'node:internal/stream_base_commons') return 'transport';
  return undefined;
}

/** ca/… or issuer/… path of a Lanyard script (compiled .js or source .ts), without the extension. */
function lanyardPath(url: string): string | undefined {
  const m = /\/((?:ca|issuer|trust-bundles|bin)\/(?:[\w-]+\/)*[\w-]+)\.[cm]?[jt]s$/.exec(url);
  return m?.[1];
}

function caVerdict(path: string, fn: string): Verdict {
  if (path === 'ca/credential') {
    if (fn === 'verifyLeaf') return 'verify';
    if (fn === 'signLeaf' || fn === 'issueLeaf') return 'sign';
    if (fn === 'snapshotIssuer') return 'policy';
    return undefined;
  }
  if (/^ca\/csr[\w-]*$/.test(path)) return 'csr';
  if (path === 'ca/chain') return 'verify';
  if (path === 'ca/leaf-template' || path === 'ca/keys/signer') return 'sign';
  if (path === 'ca/policy' || path === 'ca/identity') return 'policy';
  return undefined;
}

function issuerVerdict(path: string, fn: string): Verdict {
  if (path.startsWith('issuer/authn/')) return 'token';
  switch (path) {
    case 'issuer/certify':
      if (fn === 'parse') return 'csr';
      if (fn === 'authorize') return 'policy';
      return 'other-js';
    case 'issuer/grpc/call-log':
    case 'issuer/grpc/rejection-log':
    case 'issuer/logger':
      return 'log';
    case 'issuer/metrics':
    case 'issuer/ledger':
      return 'metrics';
    case 'issuer/cluster-worker':
      // the issuance record and its reports to the primary
      return fn === 'record' || fn === 'report' ? 'metrics' : undefined;
    case 'issuer/renewal-hint':
      return 'policy';
    case 'issuer/grpc/admission':
      // its hooks on arrival (slot taken) and on the answer (slot released)
      return 'transport';
    case 'issuer/grpc/status':
      return 'transport-out';
    case 'issuer/grpc/server':
      if (fn === 'refuse') return 'transport-out';
      // the handler's own work (abort signal, deadline timer, request fields) and the request decoder
      return 'transport-in';
    default:
      return undefined;
  }
}

/** The verdict of one frame alone. */
export function frameVerdict(f: Frame): Verdict {
  const { url, functionName: fn } = f;
  if (url === '') {
    if (fn === '(garbage collector)') return 'gc';
    if (fn === '(program)' || fn === '(root)' || fn === '(idle)') return 'other-js';
    return undefined;
  }
  const pkg = packageName(url);
  if (pkg !== undefined) return packageVerdict(pkg);
  if (url.startsWith('node:')) return coreVerdict(url);
  const path = lanyardPath(url);
  if (path === undefined) return undefined;
  if (path.startsWith('ca/')) return caVerdict(path, fn);
  if (path.startsWith('issuer/')) return issuerVerdict(path, fn);
  return undefined;
}

const onAnswerPath = (f: Frame): boolean =>
  ANSWER_PATH.has(f.functionName) &&
  (coreVerdict(f.url) === 'transport' || packageName(f.url) === '@grpc/grpc-js');

/**
 * The stage of a sample whose stack is `frames`, innermost (the running function) first. Transport
 * frames are transport-out when they or a caller are on grpc-js's answer path (ANSWER_PATH), else
 * transport-in; a stack no rule decides is other-js.
 */
export function classifyStack(frames: readonly Frame[]): Stage {
  for (let i = 0; i < frames.length; i++) {
    const v = frameVerdict(frames[i] as Frame);
    if (v === undefined) continue;
    if (v !== 'transport') return v;
    return frames.slice(i).some(onAnswerPath) ? 'transport-out' : 'transport-in';
  }
  return 'other-js';
}
