// Worker-thread side of the fuzz harness: runs one input at a time through parseCsr or the JWT
// authenticator and classifies what happened (errors lose their class when posted, so it is read here).
import { parentPort, workerData } from 'node:worker_threads';
import { InvalidRequestError, LanyardError, parseCsr } from '../../ca/index.js';
import { createJwtAuthenticator, type JwtAuthenticator } from '../../issuer/authn/index.js';
import { statusName, toGrpcError } from '../../issuer/grpc/status.js';
import { FakeClock } from '../support/clock.js';
import type { FuzzTarget, FuzzWorkerData, Outcome } from './harness.js';

const data = workerData as FuzzWorkerData;
/** made on the first token: the CSR fuzz test has no JWKS */
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
    ms,
  };
}

async function evaluate(target: FuzzTarget, input: Uint8Array): Promise<Outcome> {
  const started = performance.now();
  try {
    if (target === 'csr') {
      const csr = parseCsr(input);
      const ms = performance.now() - started;
      return { kind: 'accepted', csr: { der: Buffer.from(csr.der), spki: Buffer.from(csr.spki) }, ms };
    }
    const checker = await tokenChecker();
    const tokenStarted = performance.now();
    const account = await checker.authenticate(input, { signal: new AbortController().signal });
    return {
      kind: 'accepted',
      account: { namespace: account.namespace, name: account.name },
      ms: performance.now() - tokenStarted,
    };
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
