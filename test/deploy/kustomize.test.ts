// Renders every overlay (and the optional components) with a real kustomize renderer, when this
// machine has one (`kustomize` or `kubectl kustomize`), and checks what would be applied. Without a
// renderer the overlays are only checked file by file (manifests.test.ts): this suite then passes
// and says so; it never imitates kustomize.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INamespace } from 'kubernetes-models/v1/Namespace';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IService } from 'kubernetes-models/v1/Service';
import type { ICertificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { systemClock } from '../../ca/index.js';
import { createSigningKeyDir, mintServiceAccountToken } from '../../bin/token/index.js';
import { createIssuerLogger } from '../../issuer/logger.js';
import { startIssuer } from '../../issuer/main.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { createIdentityClient } from '../support/issuer.js';
import { writeAtomicVolume } from '../support/k8s-volume.js';
import { tempDir } from '../support/temp-dir.js';
import { makeCsr, testPki, type TestPki } from '../support/pki.js';
import { testCert } from '../support/tls-cert.js';
import {
  IN_CLUSTER_API_SERVER,
  SERVICE_ACCOUNT_DIR,
  automountsServiceAccount,
  configInPod,
  mountHolding,
  mountVolumes,
  pathsRead,
  providedPath,
  type ClusterData,
} from './pod.js';
import {
  DEPLOY_DIR,
  OVERLAYS,
  byKind,
  findRenderer,
  lanyardContainer,
  modelProblem,
  packageJson,
  parseServe,
  unknownFieldProblems,
  volumeOf,
  type K8sObject,
} from './support.js';
import { defer } from '../support/cleanup.js';

const renderer = findRenderer();
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'ClusterIssuer', 'Bundle']);
const sink = (): Writable =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

async function validateAll(objs: readonly K8sObject[], where: string): Promise<void> {
  const problems: string[] = [];
  for (const o of objs) {
    const p = await modelProblem(o);
    if (p !== undefined) problems.push(`${where} ${o.kind}/${o.metadata.name}: ${p}`);
  }
  problems.push(
    ...unknownFieldProblems(objs.map((o) => ({ where: `${where} ${o.kind}/${o.metadata.name}`, obj: o }))),
  );
  assert.deepEqual(problems, []);
}

describe('kustomize overlays, rendered', () => {
  if (renderer === undefined) {
    it('are rendered when a kustomize renderer (kustomize, kubectl) is available (none is: checked file by file only)', (t) => {
      t.diagnostic(
        'mode: static (no kustomize renderer found; install kubectl or kustomize to render the overlays)',
      );
      console.log(
        'deploy: no kustomize renderer on this machine; the overlays were checked file by file only',
      );
    });
    return;
  }
  const r = renderer;
  let pki: TestPki;
  before(async () => {
    pki = await testPki({ now: systemClock.now(), clusters: ['east', 'west'] });
  });

  it(`are rendered with ${r.name}`, (t) => {
    t.diagnostic(`mode: rendered with ${r.name}`);
  });

  for (const o of OVERLAYS) {
    describe(o.dir, () => {
      let objs: K8sObject[];
      let deployment: IDeployment;
      before(() => {
        objs = r.render(join(DEPLOY_DIR, o.dir));
        deployment = byKind<IDeployment>(objs, 'Deployment', 'lanyard');
      });

      it('renders objects that validate against their schemas, with no unknown fields', async () => {
        await validateAll(objs, o.dir);
      });

      it(`puts every namespaced object in ${o.namespace}, and the RBAC subjects with them`, () => {
        for (const x of objs) {
          if (CLUSTER_SCOPED.has(x.kind))
            assert.equal(x.metadata.namespace, undefined, `${x.kind}/${x.metadata.name}`);
          else assert.equal(x.metadata.namespace, o.namespace, `${x.kind}/${x.metadata.name}`);
        }
        const bindings = objs.filter(
          (x) => x.kind === 'ClusterRoleBinding',
        ) as unknown as IClusterRoleBinding[];
        assert.equal(bindings.length, 2);
        for (const b of bindings) {
          assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: 'lanyard', namespace: o.namespace }]);
        }
      });

      it(`runs lanyard serve for cluster ${o.cluster} with a configuration the code accepts`, () => {
        const { config } = parseServe(lanyardContainer(deployment));
        assert.equal(config.cluster, o.cluster);
        assert.equal(config.adminListen.host, '0.0.0.0');
        assert.equal(config.auth.kind, 'token-review');
        assert.equal(config.auth.audience, 'identity.l5d.io');
        assert.equal(config.domain.trustDomain, 'cluster.local');
        assert.equal(config.domain.controlNamespace, 'linkerd');
        assert.equal(lanyardContainer(deployment).image, `lanyard:${packageJson().version}`);
        assert.equal(config.tls !== undefined, o.dropIn);
      });

      if (!o.dropIn) {
        it('creates its namespace with the restricted Pod Security Standard enforced', () => {
          const ns = byKind<INamespace>(objs, 'Namespace');
          assert.equal(ns.metadata?.name, o.namespace);
          assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
        });
      } else {
        it('answers on linkerd-identity-headless:8080 over TLS, in namespace linkerd, creating no Namespace', () => {
          assert.equal(objs.filter((x) => x.kind === 'Namespace').length, 0);
          const svc = byKind<IService>(objs, 'Service', 'linkerd-identity-headless');
          assert.equal(svc.spec?.clusterIP, 'None');
          assert.equal(svc.spec?.ports?.[0]?.port, 8080);
          const cert = byKind<ICertificate>(objs, 'Certificate', 'linkerd-identity-serving');
          const { config } = parseServe(lanyardContainer(deployment));
          const mount = mountHolding(lanyardContainer(deployment), config.tls?.certPath ?? '');
          const volume = deployment.spec?.template.spec?.volumes?.find((v) => v.name === mount?.name);
          assert.equal(volume?.secret?.secretName, cert.spec.secretName);
        });
      }

      it('starts the real issuer on the files its volumes mount, ready and certifying', async (t) => {
        const container = lanyardContainer(deployment);
        const { config } = parseServe(container);
        const issuer = pki.issuers[o.cluster];
        assert.ok(issuer !== undefined);
        const serving = testCert('server');
        const data: ClusterData = {
          // cert-manager writes tls.crt, tls.key and ca.crt
          secrets: {
            'linkerd-identity-issuer': {
              'tls.crt': issuer.certPem,
              'tls.key': issuer.keyPem,
              'ca.crt': pki.anchorsPem,
            },
            'linkerd-identity-serving': { 'tls.crt': serving.certPem, 'tls.key': serving.keyPem },
          },
          configMaps: { 'linkerd-identity-trust-roots': { 'ca-bundle.crt': pki.anchorsPem } },
        };
        const root = tempDir('lanyard-pod-');
        defer(t, () => {
          root.cleanup();
        });
        mountVolumes(root.dir, deployment, container, data);
        for (const p of pathsRead(config))
          assert.ok(providedPath(deployment, container, p) || p === config.issuerDir, p);
        const inPod = configInPod(root.dir, config);
        const running = await startIssuer(inPod, {
          logger: createIssuerLogger(inPod, sink()),
          authenticator: scriptedAuthenticator(),
        });
        // the drop-in serves TLS with the mounted serving certificate (here a throw-away one for 127.0.0.1)
        const client = createIdentityClient(
          `127.0.0.1:${running.grpcAddress.port}`,
          o.dropIn
            ? grpc.credentials.createSsl(Buffer.from(serving.certPem))
            : grpc.credentials.createInsecure(),
        );
        defer(t, () => running.shutdown(200));
        defer(t, () => {
          client.close();
        });
        const status = (await (
          await fetch(`http://127.0.0.1:${running.adminAddress.port}/v1/status`)
        ).json()) as { ready: boolean; cluster: string };
        assert.deepEqual([status.ready, status.cluster], [true, o.cluster]);
        const id = 'web.default.serviceaccount.identity.linkerd.cluster.local';
        const res = await client.certify({
          identity: id,
          token: Buffer.from('sa:default:web'),
          certificate_signing_request: (await makeCsr({ dns: [id] })).der,
        });
        assert.equal(res.intermediate_certificates.length, 1);
      });
    });
  }

  describe('an overlay with the optional components', () => {
    let work: { dir: string; cleanup: () => void };
    /** east with the components listed, rendered */
    const renderWith = (name: string, components: readonly string[]): K8sObject[] => {
      const dir = join(work.dir, name);
      mkdirSync(dir);
      const rel = (p: string): string => relative(dir, join(DEPLOY_DIR, p));
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        [
          'apiVersion: kustomize.config.k8s.io/v1beta1',
          'kind: Kustomization',
          'namespace: lanyard',
          'resources:',
          `  - ${rel('overlays/east')}`,
          'components:',
          ...components.map((c) => `  - ${rel(`components/${c}`)}`),
          '',
        ].join('\n'),
      );
      return r.render(dir);
    };
    let objs: K8sObject[];
    let staticObjs: K8sObject[];
    before(() => {
      work = tempDir('lanyard-kustomize-');
      objs = renderWith('east-full', ['prometheus', 'jwt-auth']);
      staticObjs = renderWith('east-static-jwks', ['jwt-auth-static-jwks']);
    });
    after(() => {
      work.cleanup();
    });

    it('renders valid objects; the ServiceMonitor selects the Service in the same namespace', async () => {
      await validateAll(objs, 'east + components');
      await validateAll(staticObjs, 'east + jwt-auth-static-jwks');
      const sm = byKind<IServiceMonitor>(objs, 'ServiceMonitor');
      const svc = byKind<IService>(objs, 'Service', 'lanyard');
      assert.equal(sm.metadata?.namespace, svc.metadata?.namespace);
      for (const [k, v] of Object.entries(sm.spec.selector.matchLabels ?? {}))
        assert.equal(svc.metadata?.labels?.[k], v);
      byKind(objs, 'PrometheusRule');
    });

    it("jwt-auth: fetches the JWKS from the API server with the pod's own CA and token, and names no JWKS file", () => {
      const deployment = byKind<IDeployment>(objs, 'Deployment', 'lanyard');
      const container = lanyardContainer(deployment);
      const sa = byKind<IServiceAccount>(objs, 'ServiceAccount', 'lanyard');
      const { config } = parseServe(container);
      assert.equal(config.auth.kind, 'jwt');
      if (config.auth.kind !== 'jwt') return;
      assert.equal(config.auth.jwksFile, undefined);
      assert.equal(config.auth.jwksUrl, `${IN_CLUSTER_API_SERVER}/openid/v1/jwks`);
      assert.equal(config.auth.jwksCaFile, `${SERVICE_ACCOUNT_DIR}/ca.crt`);
      assert.equal(config.auth.jwksTokenFile, `${SERVICE_ACCOUNT_DIR}/token`);
      assert.equal(config.auth.issuer, 'https://kubernetes.default.svc.cluster.local');
      assert.equal(config.auth.audience, 'identity.l5d.io');
      // both files are the automounted service-account ones: no ConfigMap, no extra volume
      assert.equal(automountsServiceAccount(deployment, sa), true);
      for (const p of pathsRead(config))
        assert.ok(providedPath(deployment, container, p, sa) || p === config.issuerDir, p);
      assert.deepEqual(
        deployment.spec?.template.spec?.volumes?.map((v) => v.secret?.secretName ?? v.configMap?.name),
        ['linkerd-identity-issuer', 'linkerd-identity-trust-roots'],
      );
      // the API server lets the pod's ServiceAccount read /openid/v1/jwks ...
      const discovery = objs
        .filter((x) => x.kind === 'ClusterRoleBinding')
        .map((x) => x as unknown as IClusterRoleBinding)
        .find((b) => b.roleRef.name === 'system:service-account-issuer-discovery');
      assert.deepEqual(discovery?.subjects, [
        {
          kind: 'ServiceAccount',
          name: deployment.spec?.template.spec?.serviceAccountName,
          namespace: 'lanyard',
        },
      ]);
      // ... and no NetworkPolicy stands between them (none restricts egress)
      for (const np of objs.filter((x) => x.kind === 'NetworkPolicy') as unknown as INetworkPolicy[])
        assert.ok(!(np.spec?.policyTypes ?? []).includes('Egress'), np.metadata?.name);
    });

    it('jwt-auth: without the automounted token (automountServiceAccountToken: false) its files are missing (the check can fail)', () => {
      const deployment = byKind<IDeployment>(objs, 'Deployment', 'lanyard');
      const container = lanyardContainer(deployment);
      const { config } = parseServe(container);
      const spec = deployment.spec?.template.spec;
      assert.ok(spec !== undefined);
      const noToken: IDeployment = {
        ...deployment,
        spec: {
          ...deployment.spec,
          template: { ...deployment.spec?.template, spec: { ...spec, automountServiceAccountToken: false } },
        },
      } as IDeployment;
      const missing = pathsRead(config).filter(
        (p) => !providedPath(noToken, container, p) && p !== config.issuerDir,
      );
      assert.deepEqual(missing, [`${SERVICE_ACCOUNT_DIR}/ca.crt`, `${SERVICE_ACCOUNT_DIR}/token`]);
    });

    it('jwt-auth: verifies tokens against the JWKS fetched live, and a rotated signing key needs no manual step', async (t) => {
      const deployment = byKind<IDeployment>(objs, 'Deployment', 'lanyard');
      const container = lanyardContainer(deployment);
      const { config } = parseServe(container);
      assert.equal(config.auth.kind, 'jwt');
      if (config.auth.kind !== 'jwt') return;
      const auth = config.auth;
      const first = await createSigningKeyDir(join(work.dir, 'sa-signing-1'), { clock: systemClock });
      const second = await createSigningKeyDir(join(work.dir, 'sa-signing-2'), { clock: systemClock });
      // a stand-in API server: serves the JWKS only to the bearer of the pod's current token
      const apiCert = testCert('server');
      let jwks = readFileSync(first.jwksPath, 'utf8');
      let podToken = 'pod-token-1';
      const seen: { path: string; authorized: boolean }[] = [];
      const api = createHttpsServer({ cert: apiCert.certPem, key: apiCert.keyPem }, (req, res) => {
        const authorized = req.headers.authorization === `Bearer ${podToken}`;
        seen.push({ path: req.url ?? '', authorized });
        if (!authorized) res.writeHead(401).end();
        else if (req.url !== '/openid/v1/jwks') res.writeHead(404).end();
        else res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(jwks);
      });
      await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
      const apiPort = (api.address() as AddressInfo).port;
      const issuer = pki.issuers.east;
      assert.ok(issuer !== undefined);
      const root = join(work.dir, 'pod-live');
      const serviceAccount = { token: podToken, 'ca.crt': apiCert.certPem, namespace: 'lanyard' };
      mountVolumes(root, deployment, container, {
        secrets: { 'linkerd-identity-issuer': { 'tls.crt': issuer.certPem, 'tls.key': issuer.keyPem } },
        configMaps: { 'linkerd-identity-trust-roots': { 'ca-bundle.crt': pki.anchorsPem } },
        serviceAccount,
      });
      const inPod = configInPod(root, config, { apiServer: `https://127.0.0.1:${apiPort}` });
      const running = await startIssuer(inPod, { logger: createIssuerLogger(inPod, sink()) });
      const client = createIdentityClient(`127.0.0.1:${running.grpcAddress.port}`);
      const id = 'web.default.serviceaccount.identity.linkerd.cluster.local';
      const certify = async (key: typeof first): Promise<void> => {
        const token = await mintServiceAccountToken({
          key: key.key,
          kid: key.kid,
          issuer: auth.issuer,
          audience: auth.audience,
          namespace: 'default',
          serviceAccount: 'web',
          now: systemClock.now(),
        });
        const res = await client.certify({
          identity: id,
          token: Buffer.from(token),
          certificate_signing_request: (await makeCsr({ dns: [id] })).der,
        });
        assert.ok(res.leaf_certificate.length > 0);
      };
      defer(t, () => new Promise((resolve) => api.close(resolve)));
      defer(t, () => running.shutdown(200));
      defer(t, () => {
        client.close();
      });
      await certify(first);
      // the API server's keys rotate, and the kubelet has meanwhile rotated the pod's token
      jwks = readFileSync(second.jwksPath, 'utf8');
      podToken = 'pod-token-2';
      writeAtomicVolume(join(root, SERVICE_ACCOUNT_DIR), { ...serviceAccount, token: podToken });
      await certify(second);
      assert.ok(seen.length >= 2, 'fetched at start and again for the new kid');
      assert.deepEqual(
        seen.filter((x) => !x.authorized || x.path !== '/openid/v1/jwks'),
        [],
      );
    });

    it('jwt-auth-static-jwks: reads the JWKS from the lanyard-jwks ConfigMap it mounts, and fetches nothing', () => {
      const deployment = byKind<IDeployment>(staticObjs, 'Deployment', 'lanyard');
      const container = lanyardContainer(deployment);
      const { config } = parseServe(container);
      assert.equal(config.auth.kind, 'jwt');
      if (config.auth.kind !== 'jwt') return;
      assert.equal(config.auth.jwksUrl, undefined);
      assert.equal(config.auth.jwksTokenFile, undefined);
      const jwksFile = config.auth.jwksFile ?? '';
      const mount = mountHolding(container, jwksFile);
      assert.ok(mount !== undefined, '--jwks-file is not inside a mount');
      assert.equal(mount.readOnly, true);
      const cm = volumeOf(deployment, mount.name).configMap;
      assert.equal(cm?.name, 'lanyard-jwks');
      assert.deepEqual(
        cm.items?.map((i) => [i.key, join(mount.mountPath, i.path)]),
        [['jwks.json', jwksFile]],
      );
      for (const p of pathsRead(config))
        assert.ok(providedPath(deployment, container, p) || p === config.issuerDir, p);
    });

    it('jwt-auth-static-jwks: verifies real projected-style tokens against the JWKS mounted from the ConfigMap', async (t) => {
      const deployment = byKind<IDeployment>(staticObjs, 'Deployment', 'lanyard');
      const container = lanyardContainer(deployment);
      const { config } = parseServe(container);
      assert.equal(config.auth.kind, 'jwt');
      if (config.auth.kind !== 'jwt') return;
      const keyDir = join(work.dir, 'sa-signing-static');
      const key = await createSigningKeyDir(keyDir, { clock: systemClock });
      const issuer = pki.issuers.east;
      assert.ok(issuer !== undefined);
      const root = join(work.dir, 'pod-static');
      mountVolumes(root, deployment, container, {
        secrets: { 'linkerd-identity-issuer': { 'tls.crt': issuer.certPem, 'tls.key': issuer.keyPem } },
        configMaps: {
          'linkerd-identity-trust-roots': { 'ca-bundle.crt': pki.anchorsPem },
          'lanyard-jwks': { 'jwks.json': readFileSync(key.jwksPath, 'utf8') },
        },
      });
      const inPod = configInPod(root, config);
      const running = await startIssuer(inPod, { logger: createIssuerLogger(inPod, sink()) });
      const client = createIdentityClient(`127.0.0.1:${running.grpcAddress.port}`);
      defer(t, () => running.shutdown(200));
      defer(t, () => {
        client.close();
      });
      const token = await mintServiceAccountToken({
        key: key.key,
        kid: key.kid,
        issuer: config.auth.issuer,
        audience: config.auth.audience,
        namespace: 'default',
        serviceAccount: 'web',
        now: systemClock.now(),
      });
      const id = 'web.default.serviceaccount.identity.linkerd.cluster.local';
      const res = await client.certify({
        identity: id,
        token: Buffer.from(token),
        certificate_signing_request: (await makeCsr({ dns: [id] })).der,
      });
      assert.ok(res.leaf_certificate.length > 0);
    });

    it('jwt-auth and jwt-auth-static-jwks together are refused by lanyard serve (one JWKS source only)', () => {
      const both = renderWith('east-both-jwks', ['jwt-auth', 'jwt-auth-static-jwks']);
      const deployment = byKind<IDeployment>(both, 'Deployment', 'lanyard');
      assert.throws(() => parseServe(lanyardContainer(deployment)), { code: 'ERR_USAGE' });
    });
  });
});
