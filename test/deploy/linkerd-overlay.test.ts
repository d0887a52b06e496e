// The Linkerd drop-in (deploy/overlays/linkerd-east, linkerd-west), end to end on this machine: the
// rendered overlay's Deployment runs `lanyard serve` with exactly the arguments and LANYARD_*
// environment it gives the container (parsed by the real command tree), on files laid out as the
// kubelet mounts them (paths under a temp dir): the issuer Secret and the serving Secret made from
// the shipped cert-manager Certificates as cert-manager's CA issuer makes them (signed by the anchor
// with openssl), the trust-roots ConfigMap as trust-manager writes it, the automounted
// service-account files for TokenReview (a stand-in API server). A client that behaves as an
// unmodified Linkerd proxy (test/support/proxy-client.ts) then gets its certificate with the
// settings Linkerd's proxy injector gives a meshed pod (LINKERD2_PROXY_IDENTITY_*), dialling the
// rendered Service's port on the pod's address (a loopback address stands for the pod IP).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { ICertificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import type { IClusterIssuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/ClusterIssuer';
import type { IBundle } from '@kubernetes-models/cert-manager/trust.cert-manager.io/v1alpha1/Bundle';
import { decodePemOf } from '../../ca/pem.js';
import { systemClock } from '../../ca/index.js';
import { createSigningKeyDir, mintServiceAccountToken } from '../../bin/token/index.js';
import { writeAtomicVolume } from '../support/k8s-volume.js';
import { opensslVerify } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { testPki } from '../support/pki.js';
import { waitFor } from '../support/wait.js';
import { proxyCertify, ProxyCertifyError, type ProxyCertificate } from '../support/proxy-client.js';
import { startTokenReviewStandIn, type TokenReviewStandIn } from '../support/token-review-stand-in.js';
import { issueCertificate, type CaSecret, type IssuedSecret } from './cert-manager.js';
import { renderFileByFile, renderOverlay } from './file-by-file.js';
import {
  PROXY_TOKEN_AUDIENCE,
  PROXY_TOKEN_FILE,
  ingressAllowed,
  meshedPodLabels,
  proxyIdentityEnv,
  selects,
  serviceOf,
  type LinkerdInstall,
} from './linkerd-install.js';
import { mountHolding, type ClusterData } from './pod.js';
import { events, startPod, type Pod } from './running-pod.js';
import {
  DEPLOY_DIR,
  OVERLAYS,
  byKind,
  findRenderer,
  lanyardContainer,
  readDocs,
  type K8sObject,
} from './support.js';

/** A default Linkerd install (`linkerd install` / the Helm chart's defaults). */
const LINKERD = { namespace: 'linkerd', clusterDomain: 'cluster.local', trustDomain: 'cluster.local' };
const loadOne = (rel: string): unknown => readDocs(join(DEPLOY_DIR, rel))[0]?.value;
const clusterIssuer = loadOne('cert-manager/cluster-issuer.yaml') as IClusterIssuer;
const bundle = loadOne('cert-manager/trust-manager-bundle.yaml') as IBundle;
/** The ConfigMap trust-manager writes from the Bundle: the anchor Secret's tls.crt. */
const trustRoots = (anchor: CaSecret): ClusterData['configMaps'] => ({
  [bundle.metadata?.name ?? '']: { [bundle.spec.target.configMap?.key ?? '']: anchor.certPem },
});

/** The leaf's serial as node:tls reports a peer certificate's. */
const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber;

function verifiedBothPurposes(got: ProxyCertificate, anchorPem: string): void {
  const anchors = decodePemOf(anchorPem, 'CERTIFICATE', 'anchor');
  for (const purpose of ['sslclient', 'sslserver'] as const) {
    const v = opensslVerify({ leaf: got.leafDer, intermediates: got.intermediatesDer, anchors, purpose });
    assert.ok(v.ok, `${purpose}: ${v.stderr}`);
  }
}

/** What the rendered objects of a drop-in overlay hold that the tests use. */
interface Rendered {
  readonly objs: K8sObject[];
  readonly mode: string;
  readonly deployment: IDeployment;
  readonly serving: ICertificate;
}

function rendered(dir: string): Rendered {
  const { objs, mode } = renderOverlay(join(DEPLOY_DIR, dir));
  return {
    objs,
    mode,
    deployment: byKind<IDeployment>(objs, 'Deployment', 'lanyard'),
    serving: byKind<ICertificate>(objs, 'Certificate'),
  };
}

for (const o of OVERLAYS.filter((x) => x.dropIn)) {
  describe(`${o.dir}: an unmodified Linkerd proxy gets its certificate from the drop-in`, () => {
    let r: Rendered;
    let work: { dir: string; cleanup: () => void };
    let anchor: CaSecret;
    let api: TokenReviewStandIn;
    let servingSecret: IssuedSecret;
    let issuerCertificate: ICertificate;
    let pod: Pod;
    let env: Record<string, string>;
    let install: LinkerdInstall;
    let proxyRoot: string;

    before(async () => {
      r = rendered(o.dir);
      work = tempDir('lanyard-linkerd-overlay-');
      // the anchor, as `lanyard anchor create` makes it, is the ClusterIssuer's Secret lanyard-anchor
      const pki = await testPki({ now: systemClock.now(), clusters: [] });
      anchor = { certPem: pki.anchorsPem, keyPem: pki.anchor.keyPem };
      install = { ...LINKERD, trustAnchorsPem: anchor.certPem };
      issuerCertificate = loadOne(`cert-manager/issuer-${o.cluster}.yaml`) as ICertificate;
      servingSecret = issueCertificate(r.serving, anchor, work.dir);
      api = await startTokenReviewStandIn();
      pod = await startPod({
        deployment: r.deployment,
        root: join(work.dir, 'lanyard-pod'),
        secrets: {
          [r.serving.spec.secretName]: servingSecret,
          [issuerCertificate.spec.secretName]: issueCertificate(issuerCertificate, anchor, work.dir),
        },
        configMaps: trustRoots(anchor),
        api,
      });
      // a meshed pod: service account web in namespace default, its projected token as the kubelet writes it
      env = proxyIdentityEnv(install, { namespace: 'default', serviceAccount: 'web' });
      proxyRoot = join(work.dir, 'web-pod');
      const signing = await createSigningKeyDir(join(work.dir, 'sa-signing'), { clock: systemClock });
      const token = await mintServiceAccountToken({
        key: signing.key,
        kid: signing.kid,
        issuer: 'https://kubernetes.default.svc.cluster.local',
        audience: PROXY_TOKEN_AUDIENCE,
        namespace: 'default',
        serviceAccount: 'web',
        now: systemClock.now(),
      });
      writeAtomicVolume(join(proxyRoot, dirname(PROXY_TOKEN_FILE)), { 'linkerd-identity-token': token });
      api.addToken(token, 'system:serviceaccount:default:web', [PROXY_TOKEN_AUDIENCE]);
    });
    after(async () => {
      await pod?.running.shutdown(200);
      await api?.close();
      work?.cleanup();
    });

    const certify = (): Promise<ProxyCertificate> =>
      proxyCertify({
        addr: `${pod.ip}:${pod.grpcPort}`,
        serviceName: env.LINKERD2_PROXY_IDENTITY_SVC_NAME ?? '',
        trustAnchorsPem: env.LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS ?? '',
        identity: env.LINKERD2_PROXY_IDENTITY_LOCAL_NAME ?? '',
        tokenFile: join(proxyRoot, env.LINKERD2_PROXY_IDENTITY_TOKEN_FILE ?? ''),
      });

    it('is rendered (kustomize when this machine has it, else file by file) into the linkerd namespace', (t) => {
      t.diagnostic(`mode: ${r.mode}`);
      assert.equal(r.deployment.metadata?.namespace, LINKERD.namespace);
      assert.equal(r.serving.metadata?.namespace, LINKERD.namespace);
    });

    it('put together file by file, gives what the renderer gives for the Deployment, Services, Certificate and NetworkPolicy', (t) => {
      if (findRenderer() === undefined) {
        t.skip('no kustomize renderer on this machine to compare with');
        return;
      }
      const pick = (objs: readonly K8sObject[]) => {
        const d = byKind<IDeployment>(objs, 'Deployment', 'lanyard');
        const c = lanyardContainer(d);
        const byName = <X extends { name: string }>(xs: readonly X[] | undefined): X[] =>
          [...(xs ?? [])].sort((a, b) => a.name.localeCompare(b.name));
        return {
          namespace: d.metadata?.namespace,
          podLabels: d.spec?.template.metadata?.labels,
          container: { args: c.args, image: c.image, ports: c.ports, env: byName(c.env) },
          mounts: [...(c.volumeMounts ?? [])].sort((a, b) => a.mountPath.localeCompare(b.mountPath)),
          volumes: byName(d.spec?.template.spec?.volumes),
          others: objs
            .filter((x) => ['Service', 'Certificate', 'NetworkPolicy'].includes(x.kind))
            .map((x) => ({ kind: x.kind, name: x.metadata.name, ns: x.metadata.namespace, spec: x.spec }))
            .sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`)),
        };
      };
      assert.deepEqual(pick(renderFileByFile(join(DEPLOY_DIR, o.dir))), pick(r.objs));
    });

    it('LINKERD2_PROXY_IDENTITY_SVC_ADDR names the rendered headless Service; it selects the lanyard pods, which listen on its port, and the NetworkPolicy admits meshed pods', () => {
      const addr = env.LINKERD2_PROXY_IDENTITY_SVC_ADDR ?? '';
      const { service, port } = serviceOf(addr, r.objs, LINKERD.clusterDomain);
      // headless: DNS answers with the pods' IPs and the proxy dials them on the port it was given
      assert.equal(service.spec?.clusterIP, 'None');
      const podLabels = r.deployment.spec?.template.metadata?.labels ?? {};
      assert.ok(selects({ matchLabels: service.spec?.selector ?? {} }, podLabels));
      assert.ok(Object.keys(service.spec?.selector ?? {}).length > 0);
      assert.equal(pod.config.listen.port, port, 'lanyard serve listens where the proxy dials');
      // and the client below dials that port (unless another process holds it on every address)
      if (pod.manifestPorts) assert.equal(pod.grpcPort, port);
      const declared = service.spec?.ports?.find((p) => p.port === port);
      const target = lanyardContainer(r.deployment).ports?.find((p) => p.name === declared?.targetPort);
      assert.equal(target?.containerPort, port);
      const from = (labels: Record<string, string>) => ({
        podLabels: labels,
        namespaceLabels: { 'kubernetes.io/metadata.name': 'default' },
      });
      assert.ok(ingressAllowed(r.objs, r.deployment, from(meshedPodLabels(install, 'web')), port));
      // the check can fail: a pod the injector did not mesh is not admitted
      assert.equal(ingressAllowed(r.objs, r.deployment, from({ app: 'web' }), port), false);
    });

    it('its serving Certificate asks for what a proxy can verify: an ECDSA key, server auth, SVC_NAME as DNS SAN, from the anchor the proxies trust', () => {
      const spec = r.serving.spec;
      // cert-manager's default algorithm is RSA, which a proxy (TLS 1.3, no RSA-PSS) cannot use
      assert.equal(spec.privateKey?.algorithm, 'ECDSA');
      assert.ok(spec.usages?.includes('server auth'));
      assert.deepEqual(spec.dnsNames, [env.LINKERD2_PROXY_IDENTITY_SVC_NAME]);
      assert.deepEqual(spec.issuerRef, {
        group: 'cert-manager.io',
        kind: 'ClusterIssuer',
        name: clusterIssuer.metadata?.name,
      });
      assert.deepEqual(bundle.spec.sources, [
        { secret: { name: clusterIssuer.spec.ca?.secretName, key: 'tls.crt' } },
      ]);
      // what cert-manager makes of it: a leaf openssl accepts as a TLS server under that anchor
      const leaf = decodePemOf(servingSecret['tls.crt'], 'CERTIFICATE', 'tls.crt');
      const v = opensslVerify({
        leaf: leaf[0] as Uint8Array,
        intermediates: leaf.slice(1),
        anchors: decodePemOf(anchor.certPem, 'CERTIFICATE', 'anchor'),
        purpose: 'sslserver',
      });
      assert.ok(v.ok, v.stderr);
      const mount = mountHolding(lanyardContainer(r.deployment), pod.config.tls?.certPath ?? '');
      const volume = r.deployment.spec?.template.spec?.volumes?.find((x) => x.name === mount?.name);
      assert.equal(volume?.secret?.secretName, spec.secretName);
    });

    it("starts `lanyard serve` from the manifest's arguments and environment: ready, one process, serving a certificate that names SVC_NAME", async () => {
      assert.deepEqual(lanyardContainer(r.deployment).args, ['serve']);
      // LANYARD_WORKERS=1: `lanyard serve` runs startIssuer in its own process, as here
      assert.equal(pod.config.workers, 1);
      assert.equal(pod.config.auth.kind, 'token-review');
      const status = (await (await fetch(`${pod.admin}/v1/status`)).json()) as {
        ready: boolean;
        cluster: string;
        servingTls: { serverName: string; namesServer: boolean } | null;
      };
      assert.deepEqual(
        [status.ready, status.cluster, status.servingTls?.serverName, status.servingTls?.namesServer],
        [true, o.cluster, env.LINKERD2_PROXY_IDENTITY_SVC_NAME, true],
      );
      assert.deepEqual(events(pod, 'serving_tls_name'), []);
    });

    it('a proxy-faithful client (TLS 1.3, no ALPN, SNI = SVC_NAME, checked against the anchors) gets a leaf openssl verifies for sslclient and sslserver', async () => {
      const got = await certify();
      assert.equal(got.alpn, false);
      assert.equal(got.servedBy?.serialNumber, serialOf(servingSecret['tls.crt']));
      verifiedBothPurposes(got, anchor.certPem);
      assert.deepEqual((api.lastReview as { spec: { audiences: string[] } }).spec.audiences, [
        PROXY_TOKEN_AUDIENCE,
      ]);
      const metrics = await (await fetch(`${pod.admin}/metrics`)).text();
      assert.match(metrics, /^lanyard_tls_connections_total\{outcome="no_alpn",listener="grpc"\} [1-9]/m);
      assert.match(metrics, /^lanyard_requests_total\{api="Certify",result="OK"\} [1-9]/m);
    });

    it('serves a serving certificate cert-manager renews to new connections, without a restart; refuses a renewal proxies cannot use and keeps the previous one', async () => {
      const mount = mountHolding(lanyardContainer(r.deployment), pod.config.tls?.certPath ?? '');
      assert.ok(mount !== undefined);
      const dir = join(pod.root, mount.mountPath);
      const renewed = issueCertificate(r.serving, anchor, work.dir, 'renewed');
      writeAtomicVolume(dir, { ...renewed });
      // re-read every --poll-interval (the manifest leaves the default, 2 s)
      const reloaded = (): boolean => events(pod, 'serving_tls_reloaded').length > 0;
      await waitFor(reloaded, 'serving_tls_reloaded', 15_000);
      assert.equal((await certify()).servedBy?.serialNumber, serialOf(renewed['tls.crt']));
      const rsa = { ...r.serving, spec: { ...r.serving.spec, privateKey: { algorithm: 'RSA' as const } } };
      writeAtomicVolume(dir, { ...issueCertificate(rsa, anchor, work.dir, 'renewed-rsa') });
      const refused = (): Record<string, unknown>[] => events(pod, 'serving_tls_refused');
      await waitFor(() => refused().length > 0, 'serving_tls_refused', 15_000);
      assert.equal(refused()[0]?.code, 'ERR_SERVING_KEY_UNUSABLE');
      const got = await certify();
      assert.equal(got.servedBy?.serialNumber, serialOf(renewed['tls.crt']));
      verifiedBothPurposes(got, anchor.certPem);
    });
  });
}

describe('overlays/linkerd-east: a serving Certificate a proxy cannot use is caught (the checks can fail)', () => {
  let r: Rendered;
  let work: { dir: string; cleanup: () => void };
  let anchor: CaSecret;
  let api: TokenReviewStandIn;
  let issuerSecret: IssuedSecret;
  const pods: Pod[] = [];
  before(async () => {
    r = rendered('overlays/linkerd-east');
    work = tempDir('lanyard-linkerd-overlay-bad-');
    const pki = await testPki({ now: systemClock.now(), clusters: [] });
    anchor = { certPem: pki.anchorsPem, keyPem: pki.anchor.keyPem };
    issuerSecret = issueCertificate(
      loadOne('cert-manager/issuer-east.yaml') as ICertificate,
      anchor,
      work.dir,
    );
    api = await startTokenReviewStandIn();
  });
  after(async () => {
    for (const p of pods) await p.running.shutdown(200);
    await api?.close();
    work?.cleanup();
  });

  /** starts the pod with the rendered serving Certificate changed by `spec` */
  const startWith = (id: string, spec: Partial<ICertificate['spec']>): Promise<Pod> => {
    const serving = issueCertificate(
      { ...r.serving, spec: { ...r.serving.spec, ...spec } },
      anchor,
      work.dir,
      id,
    );
    return startPod({
      deployment: r.deployment,
      root: join(work.dir, id),
      secrets: { [r.serving.spec.secretName]: serving, 'linkerd-identity-issuer': issuerSecret },
      configMaps: trustRoots(anchor),
      api,
    }).then((p) => {
      pods.push(p);
      return p;
    });
  };

  it("without privateKey.algorithm (cert-manager's default is RSA 2048): lanyard serve refuses to start, ERR_SERVING_KEY_UNUSABLE", async () => {
    await assert.rejects(startWith('no-algorithm', { privateKey: { rotationPolicy: 'Always' } }), {
      code: 'ERR_SERVING_KEY_UNUSABLE',
    });
  });

  it('with usages that lack server auth: lanyard serve refuses to start, ERR_SERVING_CERT_EKU', async () => {
    await assert.rejects(startWith('client-auth', { usages: ['digital signature', 'client auth'] }), {
      code: 'ERR_SERVING_CERT_EKU',
    });
  });

  it('for another name than SVC_NAME: it starts with a warning and namesServer false, and the proxy refuses the handshake', async () => {
    const pod = await startWith('other-name', {
      dnsNames: ['linkerd-identity-headless.linkerd.svc.cluster.local'],
    });
    const env = proxyIdentityEnv(
      { ...LINKERD, trustAnchorsPem: anchor.certPem },
      { namespace: 'default', serviceAccount: 'web' },
    );
    const status = (await (await fetch(`${pod.admin}/v1/status`)).json()) as {
      servingTls: { namesServer: boolean } | null;
    };
    assert.equal(status.servingTls?.namesServer, false);
    assert.equal(events(pod, 'serving_tls_name')[0]?.code, 'ERR_SERVING_CERT_NAME');
    writeAtomicVolume(join(work.dir, 'token-dir'), { token: 'never-sent' });
    const err = await proxyCertify({
      addr: `${pod.ip}:${pod.grpcPort}`,
      serviceName: env.LINKERD2_PROXY_IDENTITY_SVC_NAME ?? '',
      trustAnchorsPem: anchor.certPem,
      identity: env.LINKERD2_PROXY_IDENTITY_LOCAL_NAME ?? '',
      tokenFile: join(work.dir, 'token-dir', 'token'),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProxyCertifyError);
    assert.equal(err.kind, 'transport');
    // what the troubleshooting guide says to look for: the refused handshake, logged and counted
    // (the server sees the client give up a moment after the client has)
    await waitFor(() => events(pod, 'tls_refused').length > 0, 'tls_refused', 5_000);
    assert.equal(events(pod, 'tls_refused')[0]?.outcome, 'handshake_failed');
    const metrics = await (await fetch(`${pod.admin}/metrics`)).text();
    assert.match(
      metrics,
      /^lanyard_tls_connections_total\{outcome="handshake_failed",listener="grpc"\} [1-9]/m,
    );
  });
});
