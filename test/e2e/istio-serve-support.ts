// The acceptance test's serve process and its helpers (test/e2e/istio-acceptance.test.ts): one
// `lanyard serve --istio-listen` spawned from bin with --auth jwt (a JWKS URL, down at start),
// --tls-cert/--tls-key naming both clients' server names, ztunnel trusted, a Pod API stand-in.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { SignJWT, exportJWK } from 'jose';
import { systemClock } from '../../ca/index.js';
import { startServe, type LongRunning } from '../support/cli.js';
import { runLanyard } from '../support/cli-inproc.js';
import { startJwksServer, type JwksServer } from '../support/jwks-server.js';
import { IDENTITY_SVC_NAME, opensslServingCert } from '../support/openssl-ca.js';
import {
  standInPodUid,
  startPodListStandIn,
  writeStandInKubeconfig,
  type PodListStandIn,
  type StandInPod,
} from '../support/pod-list-stand-in.js';
import { tempDir } from '../support/temp-dir.js';
import { waitFor } from '../support/wait.js';

export const TOKEN_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const ISTIOD_SAN = 'istiod.istio-system.svc';
export const spiffe = (ns: string, sa: string): string => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
export const WEB = spiffe('default', 'web');
export const LINKERD_WEB = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const standInPod = (namespace: string, name: string, serviceAccountName: string): StandInPod => ({
  namespace,
  name,
  serviceAccountName,
  nodeName: 'node-a',
  containers: [{ name: 'main' }],
});
export const ZTUNNEL_POD = standInPod('istio-system', 'ztunnel-x1', 'ztunnel');
export const ZTUNNEL_UID = standInPodUid(ZTUNNEL_POD);
export const WEB_POD = standInPod('default', 'web-1', 'web');

/** A projected service-account token; `pod`: the pod it is bound to (kubernetes.io.pod, as the kubelet asks). */
export type Mint = (
  ns: string,
  sa: string,
  audience?: string,
  pod?: { name: string; uid: string },
) => Promise<string>;

export async function tokenMinter(): Promise<{ mint: Mint; jwks: { keys: object[] } }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'e2e-1', alg: 'ES256', use: 'sig' };
  const mint: Mint = (ns, sa, audience = 'istio-ca', pod) => {
    const iat = Math.floor(systemClock.now().getTime() / 1000);
    const claims = {
      namespace: ns,
      serviceaccount: { name: sa, uid: 'u-1' },
      ...(pod !== undefined ? { pod } : {}),
    };
    return new SignJWT({ 'kubernetes.io': claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'e2e-1' })
      .setIssuer(TOKEN_ISSUER)
      .setSubject(`system:serviceaccount:${ns}:${sa}`)
      .setAudience([audience])
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + 3600)
      .sign(privateKey);
  };
  return { mint, jwks: { keys: [jwk] } };
}

/** `lanyard_requests_total` of /metrics by `api|result`. */
export async function requestCounts(adminUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^lanyard_requests_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = new Map([...(m[1] as string).matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    counts.set(`${labels.get('api') ?? ''}|${labels.get('result') ?? ''}`, Number(m[2]));
  }
  return counts;
}

export async function certificatesIssued(adminUrl: string): Promise<number> {
  const s = (await (await fetch(`${adminUrl}/v1/status`)).json()) as { certificatesIssued: number };
  return s.certificatesIssued;
}

/** serve's JSON log lines (standard error), from line `from` on. */
export function logLines(serve: LongRunning, from = 0): Record<string, unknown>[] {
  return serve
    .stderr()
    .split('\n')
    .slice(from)
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface AcceptanceServe {
  readonly dir: string;
  readonly serve: LongRunning;
  readonly adminUrl: string;
  readonly linkerdPort: number;
  /** host:port of the Istio listener, as the start line reports it */
  readonly istioAddr: string;
  readonly rootPem: string;
  readonly jwksServer: JwksServer;
  readonly jwks: { keys: object[] };
  readonly podApi: PodListStandIn;
  /** mints a token and records it in `tokens` */
  readonly mint: Mint;
  /** stops serve and the stand-ins, removes the directory */
  close(): Promise<void>;
}

/** Starts the acceptance test's serve; every token minted is pushed onto `tokens`. */
export async function startAcceptanceServe(tokens: string[]): Promise<AcceptanceServe> {
  const { dir, cleanup } = tempDir('lanyard-istio-e2e-');
  // the anchor and the issuer, made by lanyard's own commands in this process (as
  // prepareIssuerFiles does, without spawning two CLIs: seconds of the suite)
  for (const args of [
    ['anchor', 'create', '--out', join(dir, 'anchor')],
    ['issuer', 'create', '--anchor', join(dir, 'anchor'), '--cluster', 'east', '--out', join(dir, 'east')],
  ]) {
    const r = await runLanyard(args);
    assert.equal(r.code, 0, r.err);
  }
  const rootPem = readFileSync(join(dir, 'anchor', 'anchor.crt'), 'utf8');
  const minter = await tokenMinter();
  const mint: Mint = async (ns, sa, audience, pod) => {
    const token = await minter.mint(ns, sa, audience, pod);
    tokens.push(token);
    return token;
  };
  const jwks = minter.jwks;
  // the impersonation node check reads this stand-in for the Kubernetes Pod API (--kubeconfig)
  const podApi = await startPodListStandIn([ZTUNNEL_POD, WEB_POD]);
  writeStandInKubeconfig(join(dir, 'kubeconfig'), podApi);
  const jwksServer = await startJwksServer(jwks);
  // down at start: the first test sees it, then brings it back
  jwksServer.serve({ status: 503, body: 'unavailable' });
  writeFileSync(join(dir, 'jwks-ca.pem'), jwksServer.caPem);
  const serving = opensslServingCert(
    {
      certPem: readFileSync(join(dir, 'east', 'tls.crt'), 'utf8'),
      keyPem: readFileSync(join(dir, 'east', 'tls.key'), 'utf8'),
    },
    dir,
    // both clients' server names: the Linkerd identity service's and istiod's (ISTIOD_SAN)
    { name: `${IDENTITY_SVC_NAME},DNS:${ISTIOD_SAN}` },
  );
  writeFileSync(join(dir, 'web.linkerd.token'), await mint('default', 'web', 'identity.l5d.io'));
  const serve = startServe(
    dir,
    [
      '--tls-cert',
      serving.certPath,
      '--tls-key',
      serving.keyPath,
      '--istio-listen',
      '127.0.0.1:0',
      '--istio-trusted-node-accounts',
      'istio-system/ztunnel',
      '--kubeconfig',
      join(dir, 'kubeconfig'),
      '--log-level',
      'info',
    ],
    {
      auth: [
        '--auth',
        'jwt',
        '--jwks-url',
        jwksServer.url,
        '--jwks-ca-file',
        join(dir, 'jwks-ca.pem'),
        '--token-issuer',
        TOKEN_ISSUER,
      ],
    },
  );
  // the start line reports the ports bound: `gRPC on H:P[ (N workers)], Istio CA on H:P, admin on URL`
  const m = await serve.waitFor(
    /gRPC on [^:]+:(\d+)(?: \(\d+ workers\))?, Istio CA on ([^:\s]+:\d+), admin on (http:\/\/\S+)/,
  );
  const linkerdPort = Number(m[1]);
  const istioAddr = m[2] as string;
  const adminUrl = m[3] as string;
  return {
    dir,
    serve,
    adminUrl,
    linkerdPort,
    istioAddr,
    rootPem,
    jwksServer,
    jwks,
    podApi,
    mint,
    close: async () => {
      await serve.stop();
      await jwksServer.close();
      await podApi.close();
      cleanup();
    },
  };
}

/** The refusal checks of the acceptance test, on the serve `s()` returns (once started). */
export function refusalChecks(s: () => AcceptanceServe): {
  settledIssuance: () => Promise<number>;
  refused: (
    call: () => Promise<unknown>,
    expected: { readonly grpc: status; readonly code: string; readonly trailer?: false },
  ) => Promise<void>;
} {
  /**
   * The issuance record once every answered call is in it: workers report theirs to the primary at
   * most every 100 ms, so /v1/status may lag /metrics by that much. Its total.
   */
  async function settledIssuance(): Promise<number> {
    let issued = -1;
    await waitFor(async () => {
      const c = await requestCounts(s().adminUrl);
      issued = await certificatesIssued(s().adminUrl);
      return issued === (c.get('CreateCertificate|OK') ?? 0) + (c.get('Certify|OK') ?? 0);
    }, 'the issuance record to catch up with the answered calls');
    return issued;
  }

  /** A refused call: its status and code trailer, one requests_total sample, one log line, nothing issued. */
  async function refused(
    call: () => Promise<unknown>,
    expected: { readonly grpc: status; readonly code: string; readonly trailer?: false },
  ): Promise<void> {
    const before = { issued: await settledIssuance(), counts: await requestCounts(s().adminUrl) };
    const fromLine = s().serve.stderr().split('\n').length - 1;
    const err = await call().then(
      () => assert.fail('the call was answered'),
      (e: unknown) => e as ServiceError,
    );
    assert.equal(status[err.code], status[expected.grpc]);
    if (expected.trailer !== false)
      assert.equal(err.metadata.get('lanyard-error-code')[0], expected.code, 'the error code trailer');
    const result = status[expected.grpc];
    // a call the transport ends (oversized) is counted when its stream closes, maybe after the answer
    let after = new Map<string, number>();
    await waitFor(async () => {
      after = await requestCounts(s().adminUrl);
      return (
        (after.get(`CreateCertificate|${result}`) ?? 0) >
        (before.counts.get(`CreateCertificate|${result}`) ?? 0)
      );
    }, `requests_total{api="CreateCertificate",result="${result}"} to move`);
    // serve's standard error reaches this process through a pipe
    await waitFor(
      () => logLines(s().serve, fromLine).some((l) => l.rpc === 'CreateCertificate'),
      'the log line of the call',
    );
    for (const key of new Set([...before.counts.keys(), ...after.keys()])) {
      const moved = (after.get(key) ?? 0) - (before.counts.get(key) ?? 0);
      assert.equal(moved, key === `CreateCertificate|${result}` ? 1 : 0, `requests_total ${key}`);
    }
    assert.equal(await settledIssuance(), before.issued, 'nothing issued');
    const lines = logLines(s().serve, fromLine).filter((l) => l.rpc === 'CreateCertificate');
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.equal(lines[0]?.code, expected.code);
    assert.equal(lines[0]?.grpcCode, result);
    assert.ok(!s().serve.stderr().includes('Bearer '), 'no authorization header logged');
  }

  return { settledIssuance, refused };
}
