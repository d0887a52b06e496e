// Lanyard as the CA of an Istio mesh (deploy/overlays/istio-east = ../east + components/istio-ca, and
// deploy/istio/): the rendered overlay held to the code (its `lanyard serve` settings parsed by the
// real command tree; ports, Service, NetworkPolicy, RBAC and serving Certificate agreeing with them),
// the Helm values held to the overlay (the CA address is the Service's name and port, the trust domain
// the issuer's), and a pod of the rendered Deployment, on files laid out as the kubelet mounts them,
// answering the independent Istio client (test/support/istio) as istio-agent and ztunnel call it:
// dialling the CA address's port, verifying the server by the CA address's host against the
// root-cert.pem the trust-manager Bundle writes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IBundle } from '@kubernetes-models/cert-manager/trust.cert-manager.io/v1alpha1/Bundle';
import type { ICertificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import type { IClusterIssuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/ClusterIssuer';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { systemClock } from '../../ca/index.js';
import { ISTIO_CONFIGMAP_DEFAULTS } from '../../trust-bundles/index.js';
import { istioCreateCertificate, opensslVerifyIstioChain } from '../support/istio/index.js';
import { tempDir } from '../support/temp-dir.js';
import { testPki } from '../support/pki.js';
import { startTokenReviewStandIn, type TokenReviewStandIn } from '../support/token-review-stand-in.js';
import { issueCertificate, type CaSecret } from './cert-manager.js';
import { renderFileByFile, renderOverlay } from './file-by-file.js';
import { selects } from './linkerd-install.js';
import { mountHolding } from './pod.js';
import { events, startPod, type Pod } from './running-pod.js';
import {
  DEPLOY_DIR,
  REPO_ROOT,
  byKind,
  findRenderer,
  helmValuesFiles,
  isRecord,
  lanyardContainer,
  modelProblem,
  parseServe,
  parseYamlDocs,
  readDocs,
  unknownFieldProblems,
  volumeOf,
  type K8sObject,
  type ServeInvocation,
} from './support.js';

const OVERLAY = 'overlays/istio-east';
/** Istio's defaults (istio/istiod and istio/ztunnel charts): token audience, ztunnel's account, istiod's Secret. */
const ISTIO = {
  namespace: 'istio-system',
  tokenAudience: 'istio-ca',
  ztunnel: { namespace: 'istio-system', name: 'ztunnel' },
  istiodServiceAccount: 'istiod',
  istiodTlsSecret: 'istiod-tls',
  istiodHost: 'istiod.istio-system.svc',
};
const loadOne = (rel: string): unknown => readDocs(join(DEPLOY_DIR, rel))[0]?.value;
const clusterIssuer = loadOne('cert-manager/cluster-issuer.yaml') as IClusterIssuer;
const linkerdRoots = loadOne('cert-manager/trust-manager-bundle.yaml') as IBundle;
const istioRoots = loadOne('istio/trust-manager-bundle.yaml') as IBundle;
const istiodCertificate = loadOne('istio/istiod-certificate.yaml') as ICertificate;

function helmValues(rel: string): Record<string, unknown> {
  const docs = parseYamlDocs(readFileSync(join(DEPLOY_DIR, rel), 'utf8'), rel);
  assert.equal(docs.length, 1, `${rel}: one document`);
  const v = docs[0];
  assert.ok(isRecord(v), `${rel}: a mapping`);
  return v;
}
const istiod = helmValues('istio/istiod-values.yaml');
const ztunnel = helmValues('istio/ztunnel-values.yaml');
const at = (v: unknown, ...keys: string[]): unknown =>
  keys.reduce<unknown>((x, k) => (isRecord(x) ? x[k] : undefined), v);
/** global.caAddress: CA_ADDR of every injected proxy */
const caAddress = String(at(istiod, 'global', 'caAddress'));
const [caHost = '', caPort = ''] = caAddress.split(':');
/** a chart's multiCluster.clusterName as its templates read it: `valueOrDefault ... "Kubernetes"` */
const clusterNameOf = (v: unknown): string => (typeof v === 'string' && v !== '' ? v : 'Kubernetes');
/** the `clusterid` an injected sidecar's istio-agent sends: ISTIO_META_CLUSTER_ID, which the
 *  injection template sets from global.multiCluster.clusterName */
const agentClusterId = clusterNameOf(at(istiod, 'global', 'multiCluster', 'clusterName'));
/** ztunnel's: CLUSTER_ID, which its chart sets from multiCluster.clusterName */
const ztunnelClusterId = clusterNameOf(at(ztunnel, 'multiCluster', 'clusterName'));

describe('deploy/istio: the Helm values, the root ConfigMap Bundle and istiod’s certificate', () => {
  it('the Helm values files are the only YAML under deploy/ that holds no Kubernetes object, one mapping each', () => {
    assert.deepEqual(
      helmValuesFiles().map((f) => relative(REPO_ROOT, f)),
      ['deploy/istio/istiod-values.yaml', 'deploy/istio/ztunnel-values.yaml'],
    );
  });

  it('istiod: its CA off (ENABLE_CA_SERVER "false"), proxies pointed at one CA address', () => {
    // flat (env, current chart) and nested (pilot.env, older charts and istioctl): either turns it off
    assert.equal(at(istiod, 'env', 'ENABLE_CA_SERVER'), 'false');
    assert.equal(at(istiod, 'pilot', 'env', 'ENABLE_CA_SERVER'), 'false');
    assert.deepEqual(Object.keys(istiod).sort(), ['env', 'global', 'meshConfig', 'pilot']);
    assert.match(caAddress, /^[a-z0-9.-]+:\d+$/);
    // ambient: ztunnel's chart has its own caAddress (CA_ADDRESS), the same address
    assert.equal(ztunnel.caAddress, caAddress);
    // the token audience is the chart default (global.sds.token.aud: istio-ca), not overridden
    assert.equal(at(istiod, 'global', 'sds'), undefined);
  });

  it('the Bundle writes istio-ca-root-cert/root-cert.pem into every namespace from the anchor Secret the ClusterIssuer signs with', () => {
    assert.equal(istioRoots.metadata?.name, ISTIO_CONFIGMAP_DEFAULTS.name);
    assert.equal(istioRoots.spec.target.configMap?.key, ISTIO_CONFIGMAP_DEFAULTS.key);
    assert.equal(istioRoots.spec.target.namespaceSelector, undefined, 'every namespace');
    assert.deepEqual(istioRoots.spec.sources, [
      { secret: { name: clusterIssuer.spec.ca?.secretName, key: 'tls.crt' } },
    ]);
    // the same anchors as the issuer's own trust roots
    assert.deepEqual(istioRoots.spec.sources, linkerdRoots.spec.sources);
  });

  it('istiod’s serving certificate: Secret istiod-tls in istio-system, for istiod.istio-system.svc, signed by the anchor', () => {
    assert.equal(istiodCertificate.metadata?.namespace, ISTIO.namespace);
    assert.equal(istiodCertificate.spec.secretName, ISTIO.istiodTlsSecret);
    assert.deepEqual(istiodCertificate.spec.dnsNames, [ISTIO.istiodHost]);
    assert.deepEqual(istiodCertificate.spec.uris, [
      `spiffe://${String(at(istiod, 'meshConfig', 'trustDomain'))}/ns/${ISTIO.namespace}/sa/${ISTIO.istiodServiceAccount}`,
    ]);
    assert.ok(istiodCertificate.spec.usages?.includes('server auth'));
    assert.deepEqual(istiodCertificate.spec.issuerRef, {
      group: 'cert-manager.io',
      kind: 'ClusterIssuer',
      name: clusterIssuer.metadata?.name,
    });
  });
});

describe(`${OVERLAY}, rendered`, () => {
  let objs: K8sObject[];
  let mode: string;
  let deployment: IDeployment;
  let serve: ServeInvocation;
  let service: IService;
  before(() => {
    ({ objs, mode } = renderOverlay(join(DEPLOY_DIR, OVERLAY)));
    deployment = byKind<IDeployment>(objs, 'Deployment', 'lanyard');
    serve = parseServe(lanyardContainer(deployment));
    service = byKind<IService>(objs, 'Service', 'lanyard-istio');
  });
  const podLabels = (): Record<string, string> => deployment.spec?.template.metadata?.labels ?? {};

  it('renders objects that validate against their schemas, with no unknown fields, in namespace lanyard', async (t) => {
    t.diagnostic(`mode: ${mode}`);
    const problems: string[] = [];
    for (const o of objs) {
      const p = await modelProblem(o);
      if (p !== undefined) problems.push(`${o.kind}/${o.metadata.name}: ${p}`);
    }
    problems.push(
      ...unknownFieldProblems(objs.map((o) => ({ where: `${o.kind}/${o.metadata.name}`, obj: o }))),
    );
    assert.deepEqual(problems, []);
    for (const o of objs.filter((x) =>
      ['Deployment', 'Service', 'Certificate', 'NetworkPolicy'].includes(x.kind),
    ))
      assert.equal(o.metadata.namespace, 'lanyard', `${o.kind}/${o.metadata.name}`);
  });

  it('put together file by file, gives what the renderer gives (Deployment container, Services, Certificate, NetworkPolicies, RBAC)', (t) => {
    if (findRenderer() === undefined) {
      t.skip('no kustomize renderer on this machine to compare with');
      return;
    }
    const pick = (xs: readonly K8sObject[]) => {
      const c = lanyardContainer(byKind<IDeployment>(xs, 'Deployment', 'lanyard'));
      return {
        container: {
          // kustomize puts a patch's list items first; the order carries no meaning here
          ports: [...(c.ports ?? [])].sort((a, b) => a.containerPort - b.containerPort),
          env: [...(c.env ?? [])].sort((a, b) => a.name.localeCompare(b.name)),
          mounts: [...(c.volumeMounts ?? [])].sort((a, b) => a.mountPath.localeCompare(b.mountPath)),
        },
        others: xs
          .filter((x) => x.kind !== 'Deployment' && x.kind !== 'Namespace')
          .map((x) => ({
            kind: x.kind,
            name: x.metadata.name,
            ns: x.metadata.namespace,
            spec: x.spec,
            rules: x.rules,
            subjects: x.subjects,
          }))
          .sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`)),
      };
    };
    assert.deepEqual(pick(renderFileByFile(join(DEPLOY_DIR, OVERLAY))), pick(objs));
  });

  it('runs lanyard serve for cluster east with the Istio CA API on: audience istio-ca, ztunnel trusted, the mesh’s trust domain', () => {
    const { config } = serve;
    assert.equal(config.cluster, 'east');
    assert.ok(config.istio !== undefined, '--istio-listen is set');
    assert.equal(config.istio.tokenAudience, ISTIO.tokenAudience);
    assert.deepEqual(config.istio.trustedNodeAccounts, [ISTIO.ztunnel]);
    assert.equal(config.domain.trustDomain, at(istiod, 'meshConfig', 'trustDomain'));
    // the cluster name the Helm values give Istio's proxies, sent as clusterid: Lanyard's own
    assert.equal(agentClusterId, config.cluster);
    assert.equal(ztunnelClusterId, config.cluster);
    // the Linkerd side of ../east is unchanged
    assert.equal(config.auth.kind, 'token-review');
    assert.equal(config.auth.audience, 'identity.l5d.io');
  });

  it('without a serving certificate the Istio listener is refused by lanyard serve (the check can fail)', () => {
    const c = lanyardContainer(deployment);
    const noTls = { ...c, env: (c.env ?? []).filter((e) => !e.name.startsWith('LANYARD_TLS_')) };
    assert.throws(() => parseServe(noTls), { code: 'ERR_USAGE' });
  });

  it('the CA address is Service lanyard-istio: its port, the container port and --istio-listen agree, and it selects the pods', () => {
    const istio = serve.config.istio;
    assert.ok(istio !== undefined);
    assert.equal(caHost, `${service.metadata?.name ?? ''}.${service.metadata?.namespace ?? ''}.svc`);
    const port = service.spec?.ports?.find((p) => p.port === Number(caPort));
    assert.ok(port !== undefined, `Service ${service.metadata?.name ?? ''} has no port ${caPort}`);
    const target = lanyardContainer(deployment).ports?.find((p) => p.name === port.targetPort);
    assert.equal(target?.containerPort, istio.listen.port);
    assert.deepEqual(istio.listen, { host: '0.0.0.0', port: Number(caPort) });
    assert.ok(selects({ matchLabels: service.spec?.selector ?? {} }, podLabels()));
    // a second Service the Prometheus component's ServiceMonitor must not scrape (it has no admin port)
    const monitor = loadOne('components/prometheus/servicemonitor.yaml') as IServiceMonitor;
    assert.ok(!selects(monitor.spec.selector, service.metadata?.labels ?? {}));
  });

  it('the NetworkPolicy lanyard-istio admits every namespace to the Istio port only, and the base policy is kept', () => {
    const np = byKind<INetworkPolicy>(objs, 'NetworkPolicy', 'lanyard-istio');
    assert.ok(selects(np.spec?.podSelector, podLabels()));
    assert.deepEqual(np.spec?.policyTypes, ['Ingress']);
    assert.deepEqual(np.spec?.ingress, [
      { ports: [{ port: 'istio', protocol: 'TCP' }], from: [{ namespaceSelector: {} }] },
    ]);
    const named = lanyardContainer(deployment).ports?.find((p) => p.name === 'istio');
    assert.equal(named?.containerPort, serve.config.istio?.listen.port);
    byKind<INetworkPolicy>(objs, 'NetworkPolicy', 'lanyard');
  });

  it('its ServiceAccount may get and list pods in every namespace (the impersonation check), and nothing more through that role', () => {
    const role = byKind<IClusterRole>(objs, 'ClusterRole', 'lanyard-istio-pods');
    assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }]);
    const bindings = (
      objs.filter((x) => x.kind === 'ClusterRoleBinding') as unknown as IClusterRoleBinding[]
    ).filter((b) => b.roleRef.name === role.metadata?.name);
    assert.equal(bindings.length, 1);
    assert.equal(bindings[0]?.roleRef.kind, 'ClusterRole');
    assert.deepEqual(bindings[0]?.subjects, [
      {
        kind: 'ServiceAccount',
        name: deployment.spec?.template.spec?.serviceAccountName,
        namespace: 'lanyard',
      },
    ]);
  });

  it('serves TLS with Certificate lanyard-istio-serving: the CA address’s host among its names, signed by the anchor, mounted read-only', () => {
    const cert = byKind<ICertificate>(objs, 'Certificate', 'lanyard-istio-serving');
    const tls = serve.config.tls;
    assert.ok(tls !== undefined);
    assert.ok(cert.spec.dnsNames?.includes(caHost), `${caHost} is not a DNS name of the certificate`);
    assert.equal(tls.serverName, caHost, 'lanyard serve checks the name agents verify');
    assert.ok(cert.spec.usages?.includes('server auth'));
    assert.equal(cert.spec.privateKey?.algorithm, 'ECDSA');
    assert.equal(cert.spec.issuerRef.name, clusterIssuer.metadata?.name);
    const container = lanyardContainer(deployment);
    for (const path of [tls.certPath, tls.keyPath]) {
      const mount = mountHolding(container, path);
      assert.ok(mount !== undefined, `${path} is not inside a mount`);
      assert.equal(mount.readOnly, true);
      const volume = volumeOf(deployment, mount.name);
      assert.equal(volume.secret?.secretName, cert.spec.secretName);
      assert.equal(volume.secret.defaultMode, 0o440);
    }
  });
});

describe(`${OVERLAY}: Istio's proxies get their certificates from a pod of the rendered Deployment`, () => {
  let work: { dir: string; cleanup: () => void };
  let anchor: CaSecret;
  let api: TokenReviewStandIn;
  let pod: Pod;
  /** root-cert.pem as the Bundle writes it into the workload's namespace: the anchor Secret's tls.crt */
  let rootPem: string;

  before(async () => {
    const { objs } = renderOverlay(join(DEPLOY_DIR, OVERLAY));
    const deployment = byKind<IDeployment>(objs, 'Deployment', 'lanyard');
    const serving = byKind<ICertificate>(objs, 'Certificate', 'lanyard-istio-serving');
    work = tempDir('lanyard-istio-overlay-');
    const pki = await testPki({ now: systemClock.now(), clusters: [] });
    anchor = { certPem: pki.anchorsPem, keyPem: pki.anchor.keyPem };
    rootPem = anchor.certPem;
    const issuer = loadOne('cert-manager/issuer-east.yaml') as ICertificate;
    api = await startTokenReviewStandIn();
    pod = await startPod({
      deployment,
      root: join(work.dir, 'lanyard-pod'),
      secrets: {
        [serving.spec.secretName]: issueCertificate(serving, anchor, work.dir),
        [issuer.spec.secretName]: issueCertificate(issuer, anchor, work.dir),
      },
      configMaps: {
        [linkerdRoots.metadata?.name ?? '']: {
          [linkerdRoots.spec.target.configMap?.key ?? '']: anchor.certPem,
        },
      },
      api,
    });
  });
  after(async () => {
    await pod?.running.shutdown(200);
    await api?.close();
    work?.cleanup();
  });

  const dial = (): string => {
    assert.ok(pod.istioPort !== undefined, 'the Istio listener is on');
    // the CA address's port, unless another process holds it on every loopback address
    if (pod.manifestPorts) assert.equal(pod.istioPort, Number(caPort));
    return `${pod.ip}:${pod.istioPort}`;
  };
  const tokenFor = (ns: string, sa: string, audiences = [ISTIO.tokenAudience]): string =>
    api.issueToken(`system:serviceaccount:${ns}:${sa}`, { audiences });

  it('istio-agent (RSA-2048, O=, CertSigner, the clusterid the injector sets): a chain openssl accepts for both purposes, verifying the server by the CA address’s host', async () => {
    const spiffeId = `spiffe://${serve()}/ns/default/sa/web`;
    const got = await istioCreateCertificate({
      addr: dial(),
      serverName: caHost,
      rootPem,
      style: 'istio-agent',
      clusterId: agentClusterId,
      spiffeId,
      token: tokenFor('default', 'web'),
    });
    assert.deepEqual(opensslVerifyIstioChain(got.chain), []);
  });

  it('ztunnel (P-256, empty subject, its chart’s clusterid) asking for its own identity', async () => {
    const got = await istioCreateCertificate({
      addr: dial(),
      serverName: caHost,
      rootPem,
      style: 'ztunnel',
      clusterId: ztunnelClusterId,
      impersonate: false,
      spiffeId: `spiffe://${serve()}/ns/${ISTIO.ztunnel.namespace}/sa/${ISTIO.ztunnel.name}`,
      token: tokenFor(ISTIO.ztunnel.namespace, ISTIO.ztunnel.name),
    });
    assert.deepEqual(opensslVerifyIstioChain(got.chain), []);
  });

  it('is ready, and its status says the serving certificate names the host agents verify (no serving_tls_name warning)', async () => {
    const status = (await (await fetch(`${pod.admin}/v1/status`)).json()) as {
      ready: boolean;
      cluster: string;
      servingTls: { serverName: string; namesServer: boolean } | null;
    };
    assert.deepEqual(
      [status.ready, status.cluster, status.servingTls?.serverName, status.servingTls?.namesServer],
      [true, 'east', caHost, true],
    );
    assert.deepEqual(events(pod, 'serving_tls_name'), []);
  });

  it('a token for the Linkerd audience is refused (UNAUTHENTICATED)', async () => {
    await assert.rejects(
      istioCreateCertificate({
        addr: dial(),
        serverName: caHost,
        rootPem,
        style: 'istio-agent',
        spiffeId: `spiffe://${serve()}/ns/default/sa/web`,
        token: tokenFor('default', 'web', ['identity.l5d.io']),
      }),
      (err: { code?: number }) => err.code === status.UNAUTHENTICATED,
    );
  });

  it('an agent that expects another name (istiod’s) refuses the server (the name check can fail)', async () => {
    await assert.rejects(
      istioCreateCertificate({
        addr: dial(),
        serverName: ISTIO.istiodHost,
        rootPem,
        style: 'istio-agent',
        spiffeId: `spiffe://${serve()}/ns/default/sa/web`,
        token: tokenFor('default', 'web'),
      }),
      (err: { code?: number }) => err.code === status.UNAVAILABLE,
    );
  });

  /** the trust domain the pod serves */
  function serve(): string {
    return pod.config.domain.trustDomain;
  }
});
