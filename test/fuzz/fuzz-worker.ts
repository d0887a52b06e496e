// Worker-thread side of the fuzz harness: runs one input at a time through parseCsr, the JWT
// authenticator, decodePem or parseTrustBundle and classifies what happened (errors lose their class
// when posted, so it is read here).
import { parentPort, workerData } from 'node:worker_threads';
import { InvalidRequestError, LanyardError, decodePem } from '../../ca/index.js';
import { parseCsr } from '../../ca/csr.js';
import { createJwtAuthenticator, type JwtAuthenticator } from '../../issuer/authn/index.js';
import { statusName, toGrpcError } from '../../issuer/grpc/status.js';
import { parseTrustBundle } from '../../trust-bundles/bundle.js';
import { FakeClock } from '../support/clock.js';
import type { FuzzTarget, FuzzWorkerData, Outcome } from './harness.js';

const data = workerData as FuzzWorkerData;
/** made on the first token: the other fuzz targets have no JWKS */
let authenticator: Promise<JwtAuthenticator> | undefined;
function tokenChecker(): Promise<JwtAuthenticator> {
  authenticator ??= (async () => {
    if (data.jwksFile === undefined) throw new Error('this fuzz worker was started without a JWKS file');
    const a = createJwtAuthenticator({
      jwks: { file: data.jwksFile },
      issuer: data.tokenIssuer ?? '',
      clock: new FakeClock(data.nowMs),
    });
    await a.refresh();
    return a;
  })();
  return authenticator;
}

function causeChain(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    out.push((e as { constructor?: { name?: string } }).constructor?.name ?? typeof e);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

function classify(err: unknown, ms: number): Outcome {
  const e = err as { constructor?: { name?: string }; message?: unknown; stack?: unknown };
  return {
    kind: err instanceof LanyardError ? 'rejected' : 'crashed',
    errorClass: e?.constructor?.name ?? typeof err,
    ...(err instanceof LanyardError ? { code: err.code } : {}),
    isLanyardError: err instanceof LanyardError,
    isInvalidRequestError: err instanceof InvalidRequestError,
    grpcStatus: statusName(toGrpcError(err).grpcCode),
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.stack === 'string' ? { stack: e.stack } : {}),
    causes: causeChain(err),
    ms,
  };
}

async function evaluate(target: FuzzTarget, input: Uint8Array): Promise<Outcome> {
  const started = performance.now();
  try {
    switch (target) {
      case 'csr': {
        const csr = parseCsr(input);
        const ms = performance.now() - started;
        return { kind: 'accepted', csr: { der: Buffer.from(csr.der), spki: Buffer.from(csr.spki) }, ms };
      }
      case 'pem': {
        const blocks = decodePem(Buffer.from(input).toString('utf8'));
        return { kind: 'accepted', pem: blocks, ms: performance.now() - started };
      }
      case 'bundle': {
        const bundle = parseTrustBundle(Buffer.from(input).toString('utf8'), 'the fuzzed bundle');
        return {
          kind: 'accepted',
          bundle: bundle.anchors.map((a) => ({
            der: a.certificate.der,
            fingerprint: a.fingerprint,
            notBeforeMs: a.notBefore.getTime(),
          })),
          ms: performance.now() - started,
        };
      }
      case 'token': {
        const checker = await tokenChecker();
        const tokenStarted = performance.now();
        const account = await checker.authenticate(input, { signal: new AbortController().signal });
        return {
          kind: 'accepted',
          account: { namespace: account.namespace, name: account.name },
          ms: performance.now() - tokenStarted,
        };
      }
    }
  } catch (err) {
    return classify(err, performance.now() - started);
  }
}

parentPort?.on('message', (m: { id: number; target: FuzzTarget; input: Uint8Array }) => {
  void evaluate(m.target, m.input).then((outcome) => {
    parentPort?.postMessage({ id: m.id, outcome });
  });
});
parentPort?.postMessage('ready');
