// The manifests held to the code: flags, ports, probe paths, mounted file names, metrics and names
// are checked against the real `lanyard serve` parser, config, admin server and metrics registry.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IHTTPGetAction } from 'kubernetes-models/v1/HTTPGetAction';
import type { IBundle } from '@kubernetes-models/cert-manager/trust.cert-manager.io/v1alpha1/Bundle';
import type { ICertificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import type { IClusterIssuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/ClusterIssuer';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { ISSUER_FILES } from '../../ca/store/issuer-dir.js';
import { parseCertificatesPem, systemClock, workloadIdentity } from '../../ca/index.js';
import { SERVE_DEFAULTS } from '../../issuer/config.js';
import { createDirectoryCredentialSource } from '../../issuer/credentials.js';
import { createIssuerLogger, createLogger } from '../../issuer/logger.js';
import { startIssuer, type RunningIssuer } from '../../issuer/main.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { runLanyard } from '../support/cli-inproc.js';
import { createIdentityClient } from '../support/issuer.js';
import { writeAtomicVolume } from '../support/k8s-volume.js';
import { tempDir } from '../support/temp-dir.js';
import { makeCsr, testPki, type TestPki } from '../support/pki.js';
import { waitFor } from '../support/wait.js';
import {
  SERVICE_ACCOUNT_DIR,
  automountedPaths,
  configInPod,
  mountHolding,
  mountVolumes,
  pathsRead,
  providedPath,
  type ClusterData,
} from './pod.js';
import {
  absentSelectorOf,
  parseExposition,
  promqlErrors,
  select,
  selectorsOf,
  upperBoundOf,
  type Sample,
} from './promql.js';
import {
  DEPLOY_DIR,
  byKind,
  goDurationMs,
  lanyardContainer,
  packageJson,
  parseServe,
  parseYamlDocs,
  readDocs,
  volumeOf,
  yamlFiles,
  type K8sObject,
  type ServeInvocation,
} from './support.js';
import { defer } from '../support/cleanup.js';

const load = (...rel: string[]): K8sObject[] =>
  rel.flatMap((r) => readDocs(join(DEPLOY_DIR, r)).map((d) => d.value as K8sObject));

const base = load(
  'base/serviceaccount.yaml',
  'base/rbac.yaml',
  'base/deployment.yaml',
  'base/service.yaml',
  'base/poddisruptionbudget.yaml',
  'base/networkpolicy.yaml',
);
const deployment = byKind<IDeployment>(base, 'Deployment', 'lanyard');
const container = lanyardContainer(deployment);
const podSpec = deployment.spec?.template.spec;
const podLabels = deployment.spec?.template.metadata?.labels ?? {};
const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

function containerPort(c: IContainer, name: string): number {
  const p = c.ports?.find((x) => x.name === name);
  if (p === undefined) throw new Error(`no container port named ${name}`);
  return p.containerPort;
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

function silentIssuerLogger(config: Parameters<typeof createIssuerLogger>[0], lines: string[]) {
  return createIssuerLogger(
    config,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    }),
  );
}

describe('the Deployment runs `lanyard serve` as the code defines it', () => {
  let serve: ServeInvocation;
  before(() => {
    serve = parseServe(container);
  });

  it('its arguments and LANYARD_* environment parse with the real command tree and buildIssuerConfig', () => {
    assert.deepEqual(container.args, ['serve']);
    assert.equal(serve.config.auth.kind, 'token-review');
    assert.equal(serve.config.auth.audience, SERVE_DEFAULTS.audience);
    assert.equal(serve.config.domain.trustDomain, 'cluster.local');
    assert.equal(serve.config.domain.controlNamespace, 'linkerd');
  });

  it('a misspelt variable or an invalid value fails the check (the check can fail)', () => {
    const withEnv = (env: { name: string; value: string }[]): IContainer => ({
      ...container,
      env: [...(container.env ?? []).filter((e) => !env.some((x) => x.name === e.name)), ...env],
    });
    assert.throws(() => parseServe(withEnv([{ name: 'LANYARD_ADMIN_LISTENER', value: '0.0.0.0:9990' }])), {
      code: 'ERR_USAGE',
    });
    assert.throws(() => parseServe(withEnv([{ name: 'LANYARD_AUTH', value: 'tokenreview' }])));
    assert.throws(() => parseServe(withEnv([{ name: 'LANYARD_SHUTDOWN_GRACE', value: 'ten' }])));
    assert.throws(() => parseServe(withEnv([{ name: 'LANYARD_AUTH', value: 'jwt' }])), { code: 'ERR_USAGE' });
    assert.throws(() => parseServe({ ...container, args: ['serv'] }));
  });

  it('listens for gRPC and admin HTTP on all interfaces, on the ports the container declares', () => {
    assert.deepEqual(serve.config.listen, { host: '0.0.0.0', port: containerPort(container, 'grpc') });
    // the default 127.0.0.1 would hide /live, /ready and /metrics from the kubelet and Prometheus
    assert.deepEqual(serve.config.adminListen, { host: '0.0.0.0', port: containerPort(container, 'admin') });
  });

  it('probes /live (liveness, startup) and /ready (readiness) on the admin port', () => {
    const get = (p: { httpGet?: IHTTPGetAction } | undefined): IHTTPGetAction => {
      assert.ok(p?.httpGet !== undefined);
      return p.httpGet;
    };
    assert.deepEqual(
      [get(container.livenessProbe).path, get(container.livenessProbe).port],
      ['/live', 'admin'],
    );
    assert.deepEqual(
      [get(container.startupProbe).path, get(container.startupProbe).port],
      ['/live', 'admin'],
    );
    assert.deepEqual(
      [get(container.readinessProbe).path, get(container.readinessProbe).port],
      ['/ready', 'admin'],
    );
  });

  it('reads the issuer from the read-only Secret directory mount and the anchors from the ConfigMap mount', () => {
    const issuerMount = container.volumeMounts?.find((m) => m.mountPath === serve.config.issuerDir);
    assert.ok(issuerMount !== undefined, '--issuer-dir is not a mount point');
    assert.equal(issuerMount.readOnly, true);
    const issuerVolume = volumeOf(deployment, issuerMount.name);
    assert.equal(issuerVolume.secret?.secretName, 'linkerd-identity-issuer');
    // no items: both layouts the code reads (tls.crt/tls.key and crt.pem/key.pem) come through
    assert.equal(issuerVolume.secret.items, undefined);

    const anchors = serve.config.trustAnchorsPath;
    assert.ok(anchors !== undefined);
    const anchorsMount = mountHolding(container, anchors);
    assert.ok(anchorsMount !== undefined, '--trust-anchors is not inside a mount');
    assert.equal(anchorsMount.readOnly, true);
    assert.equal(join(anchorsMount.mountPath, 'ca-bundle.crt'), anchors);
    const cm = volumeOf(deployment, anchorsMount.name).configMap;
    assert.equal(cm?.name, 'linkerd-identity-trust-roots');
    assert.deepEqual(
      cm.items?.map((i) => [i.key, i.path]),
      [['ca-bundle.crt', 'ca-bundle.crt']],
    );
    for (const m of container.volumeMounts ?? []) {
      assert.equal(m.subPath, undefined, `${m.name}: subPath mounts are never updated`);
      assert.equal(m.readOnly, true, `${m.name} is writable`);
    }
    for (const p of pathsRead(serve.config))
      assert.ok(providedPath(deployment, container, p) || p === serve.config.issuerDir, p);
  });

  it('gives in-flight calls the same drain the server uses: preStop + --shutdown-grace fit in the grace period', () => {
    const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
    assert.equal(preStop[0], 'sleep');
    const preStopMs = Number(preStop[1]) * 1000;
    assert.ok(preStopMs >= 3000, 'endpoints need a few seconds to drop the pod');
    const graceMs = (podSpec?.terminationGracePeriodSeconds ?? 30) * 1000;
    assert.equal(serve.config.shutdownGraceMs, 10_000);
    assert.ok(
      graceMs >= preStopMs + serve.config.shutdownGraceMs + 2000,
      `terminationGracePeriodSeconds ${graceMs / 1000}s < preStop ${preStopMs / 1000}s + drain ${serve.config.shutdownGraceMs / 1000}s + 2s`,
    );
  });

  it('runs non-root with a read-only root filesystem, no capabilities, no privilege escalation, RuntimeDefault seccomp', () => {
    const pod = podSpec?.securityContext;
    const c = container.securityContext;
    assert.equal(pod?.runAsNonRoot, true);
    assert.ok((pod.runAsUser ?? 0) > 0);
    assert.equal(pod.seccompProfile?.type, 'RuntimeDefault');
    assert.equal(c?.runAsNonRoot, true);
    assert.equal(c.runAsUser, pod.runAsUser);
    assert.equal(c.readOnlyRootFilesystem, true);
    assert.equal(c.allowPrivilegeEscalation, false);
    assert.equal(c.privileged, false);
    assert.deepEqual(c.capabilities?.drop, ['ALL']);
    assert.equal(c.capabilities.add, undefined);
    assert.equal(c.seccompProfile?.type, 'RuntimeDefault');
    assert.equal(podSpec?.hostNetwork, undefined);
    // the Secret and ConfigMap files are readable through the pod's fsGroup
    assert.equal(pod.fsGroup, pod.runAsGroup);
    for (const v of podSpec?.volumes ?? []) {
      const mode = v.secret?.defaultMode ?? v.configMap?.defaultMode;
      assert.equal(mode, 0o440, `${v.name}: defaultMode`);
    }
  });

  it('requests and limits CPU and memory, and keeps the V8 heap inside the memory limit', () => {
    const r = container.resources;
    for (const k of ['cpu', 'memory']) {
      assert.ok(r?.requests?.[k] !== undefined, `no ${k} request`);
      assert.ok(r.limits?.[k] !== undefined, `no ${k} limit`);
    }
    const mi = (q: string | number | undefined): number => {
      const m = /^(\d+)(Mi|Gi)$/.exec(String(q));
      assert.ok(m !== null, `memory quantity ${String(q)}`);
      return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
    };
    assert.ok(mi(r?.requests?.memory) <= mi(r?.limits?.memory));
    const heap = /--max-old-space-size=(\d+)/.exec(
      container.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '',
    );
    assert.ok(heap !== null);
    assert.ok(Number(heap[1]) < mi(r?.limits?.memory) * 0.85);
  });

  it('keeps two replicas on different nodes and at least one through voluntary disruptions', () => {
    assert.equal(deployment.spec?.replicas, 2);
    const anti = podSpec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    assert.ok(
      anti.some(
        (t) => t.topologyKey === 'kubernetes.io/hostname' && matches(t.labelSelector?.matchLabels, podLabels),
      ),
    );
    // with required anti-affinity and two nodes a surge pod could never schedule
    assert.equal(deployment.spec?.strategy?.rollingUpdate?.maxSurge, 0);
    const pdb = byKind<IPodDisruptionBudget>(base, 'PodDisruptionBudget');
    assert.equal(pdb.spec?.minAvailable, 1);
    assert.ok(matches(pdb.spec?.selector?.matchLabels, podLabels));
    assert.ok(matches(deployment.spec?.selector.matchLabels, podLabels));
  });

  it('is never meshed itself: proxies ask it for their first certificate', () => {
    assert.equal(deployment.spec?.template.metadata?.annotations?.['linkerd.io/inject'], 'disabled');
  });

  it('the Service and NetworkPolicy use the container ports by name, and select the pods', () => {
    const svc = byKind<IService>(base, 'Service');
    assert.ok(matches(svc.spec?.selector, podLabels));
    assert.deepEqual(
      svc.spec?.ports?.map((p) => [p.name, p.port, p.targetPort]),
      [
        ['grpc', serve.config.listen.port, 'grpc'],
        ['admin', serve.config.adminListen.port, 'admin'],
      ],
    );
    const np = byKind<INetworkPolicy>(base, 'NetworkPolicy');
    assert.ok(matches(np.spec?.podSelector.matchLabels, podLabels));
    assert.deepEqual(np.spec?.policyTypes, ['Ingress']);
    const rules = np.spec?.ingress ?? [];
    assert.equal(rules.length, 2);
    const grpc = rules.find((r) => r.ports?.some((p) => p.port === 'grpc'));
    const admin = rules.find((r) => r.ports?.some((p) => p.port === 'admin'));
    // gRPC: every namespace, but only pods the Linkerd proxy injector marked as meshed
    assert.deepEqual(grpc?.from, [
      {
        namespaceSelector: {},
        podSelector: { matchExpressions: [{ key: 'linkerd.io/control-plane-ns', operator: 'Exists' }] },
      },
    ]);
    // admin: the monitoring namespace only
    assert.deepEqual(admin?.from, [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ]);
    for (const r of rules) assert.equal(r.ports?.length, 1);
  });

  it('binds its ServiceAccount to create TokenReviews (token-review) and read the JWKS (jwt), nothing more', () => {
    const sa = byKind<IServiceAccount>(base, 'ServiceAccount');
    assert.equal(podSpec?.serviceAccountName, sa.metadata?.name);
    // token-review mode authenticates with the pod's own token (in-cluster credentials)
    assert.notEqual(podSpec?.automountServiceAccountToken, false);
    const role = byKind<IClusterRole>(base, 'ClusterRole');
    assert.deepEqual(role.rules, [
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    ]);
    const bindings = base.filter((o) => o.kind === 'ClusterRoleBinding') as unknown as IClusterRoleBinding[];
    assert.deepEqual(bindings.map((b) => b.roleRef.name).sort(), [
      role.metadata?.name,
      'system:service-account-issuer-discovery',
    ]);
    for (const b of bindings) {
      // the namespace comes from the overlay (kustomize sets it on ServiceAccount subjects)
      assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: sa.metadata?.name }]);
    }
  });

  it('names an image whose tag is the package version', () => {
    assert.equal(container.image, `lanyard:${packageJson().version}`);
  });
});

describe('a pod of this Deployment, on the files Kubernetes would mount', () => {
  let pki: TestPki;
  let root: { dir: string; cleanup: () => void };
  let issuer: RunningIssuer;
  let admin: string;
  let samples: Sample[];
  const logLines: string[] = [];
  const secretToken = 'sa:default:web';
  const badToken = 'eyJhbGciOiJub25lIn0.not-a-real-token.e30';

  before(async () => {
    pki = await testPki({ now: systemClock.now(), clusters: ['east'] });
    const east = pki.issuers.east;
    assert.ok(east !== undefined);
    root = tempDir('lanyard-pod-');
    // the ConfigMap exactly as docs/install.md makes it: lanyard bundle create, then bundle export
    writeFileSync(join(root.dir, 'anchor.crt'), pki.anchorsPem);
    const bundleFile = join(root.dir, 'ca-bundle.crt');
    assert.equal(
      (await runLanyard(['bundle', 'create', '--out', bundleFile, join(root.dir, 'anchor.crt')])).code,
      0,
    );
    const exported = await runLanyard([
      'bundle',
      'export',
      bundleFile,
      '--format',
      'configmap',
      '--namespace',
      'lanyard',
    ]);
    assert.equal(exported.code, 0);
    const configMap = parseYamlDocs(exported.out, 'bundle export')[0] as {
      metadata: { name: string };
      data: Record<string, string>;
    };
    // `kubectl create secret tls` writes tls.crt and tls.key
    const data: ClusterData = {
      secrets: { 'linkerd-identity-issuer': { 'tls.crt': east.certPem, 'tls.key': east.keyPem } },
      configMaps: { [configMap.metadata.name]: configMap.data },
    };
    mountVolumes(root.dir, deployment, container, data);
    const config = configInPod(root.dir, parseServe(container).config);
    issuer = await startIssuer(config, {
      logger: silentIssuerLogger(config, logLines),
      authenticator: scriptedAuthenticator(),
    });
    admin = `http://127.0.0.1:${issuer.adminAddress.port}`;
    const client = createIdentityClient(`127.0.0.1:${issuer.grpcAddress.port}`);
    try {
      const csr = (await makeCsr({ dns: [ID] })).der;
      await client.certify({
        identity: ID,
        token: Buffer.from(secretToken),
        certificate_signing_request: csr,
      });
      await assert.rejects(
        client.certify({ identity: ID, token: Buffer.from(badToken), certificate_signing_request: csr }),
        { code: 16 }, // UNAUTHENTICATED
      );
    } finally {
      client.close();
    }
    samples = parseExposition(await (await fetch(`${admin}/metrics`)).text());
  });
  after(async () => {
    await issuer.shutdown(500);
    root.cleanup();
  });

  it('answers 200 on the liveness, startup and readiness probe paths (and 404 elsewhere)', async () => {
    for (const p of [container.livenessProbe, container.startupProbe, container.readinessProbe]) {
      const path = p?.httpGet?.path ?? '';
      assert.equal((await fetch(`${admin}${path}`)).status, 200, path);
    }
    assert.equal((await fetch(`${admin}/no-such-path`)).status, 404);
  });

  it('loaded the issuer from tls.crt/tls.key and the anchors from the ConfigMap `lanyard bundle export` writes', async () => {
    const status = (await (await fetch(`${admin}/v1/status`)).json()) as {
      ready: boolean;
      issuer: { serial: string };
    };
    assert.equal(status.ready, true);
    assert.equal(status.issuer.serial, pki.issuers.east?.cert.serialHex);
  });

  it('picks up a changed trust-anchor ConfigMap without a restart (directory mount, no subPath)', async () => {
    const next = await testPki({ now: systemClock.now(), clusters: ['east'] });
    const anchorsMount = mountHolding(container, parseServe(container).config.trustAnchorsPath ?? '');
    assert.ok(anchorsMount !== undefined);
    writeAtomicVolume(join(root.dir, anchorsMount.mountPath), {
      'ca-bundle.crt': pki.anchorsPem + next.anchorsPem,
    });
    let count = 0;
    await waitFor(
      async () => {
        count = parseCertificatesPem(await (await fetch(`${admin}/v1/bundle`)).text(), 'bundle').length;
        return count === 2;
      },
      'the bundle to hold both anchors',
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.equal(count, 2);
  });

  it('never writes the token it was sent to its log', () => {
    assert.ok(logLines.length >= 2);
    for (const line of logLines) {
      assert.ok(!line.includes(secretToken) && !line.includes(badToken), line);
      assert.ok(!line.includes('PRIVATE KEY'), line);
    }
  });

  it('reads an issuer Secret in the linkerd.io/tls layout (crt.pem/key.pem) from the same mount', async (t) => {
    const dir = tempDir('lanyard-pod-');
    defer(t, () => {
      dir.cleanup();
    });
    const east = pki.issuers.east;
    assert.ok(east !== undefined);
    const secret: Record<string, string> = {};
    secret[ISSUER_FILES['linkerd.io/tls'].cert] = east.certPem;
    secret[ISSUER_FILES['linkerd.io/tls'].key] = east.keyPem;
    mountVolumes(dir.dir, deployment, container, {
      secrets: { 'linkerd-identity-issuer': secret },
      configMaps: { 'linkerd-identity-trust-roots': { 'ca-bundle.crt': pki.anchorsPem } },
    });
    const config = configInPod(dir.dir, parseServe(container).config);
    const source = await createDirectoryCredentialSource({
      dir: config.issuerDir,
      ...(config.trustAnchorsPath !== undefined ? { trustAnchorsPath: config.trustAnchorsPath } : {}),
      clock: systemClock,
      logger: createLogger({ level: 'silent' }),
      pollIntervalMs: 0,
    });
    assert.equal(source.current()?.certificate.serialHex, east.cert.serialHex);
    await source.close();
  });

  describe('Prometheus', () => {
    const monitor = load('components/prometheus/servicemonitor.yaml')[0] as unknown as IServiceMonitor;
    const rules = load('components/prometheus/prometheusrule.yaml')[0] as unknown as IPrometheusRule;
    const alerts = (rules.spec.groups ?? []).flatMap((g) => g.rules ?? []);
    const exprOf = (name: string): string => String(alerts.find((a) => a.alert === name)?.expr ?? '');

    it('the ServiceMonitor scrapes /metrics on the admin port of the Service', async () => {
      const svc = byKind<IService>(base, 'Service');
      assert.ok(matches(monitor.spec.selector.matchLabels, svc.metadata?.labels ?? {}));
      const ep = monitor.spec.endpoints?.[0];
      assert.equal(ep?.port, 'admin');
      assert.ok(svc.spec?.ports?.some((p) => p.name === ep.port));
      assert.equal(ep.path, '/metrics');
      const res = await fetch(`${admin}${ep.path}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    });

    it('alerts on issuer expiry within 7 days, anchor expiry within 60 days, Certify errors and readiness', () => {
      assert.match(
        exprOf('LanyardIssuerExpiringSoon'),
        /lanyard_issuer_expiry_timestamp_seconds.*< 7 \* 86400/,
      );
      assert.match(
        exprOf('LanyardAnchorExpiringSoon'),
        /lanyard_anchor_expiry_timestamp_seconds.*< 60 \* 86400/,
      );
      assert.match(
        exprOf('LanyardCertifyErrorRatioHigh'),
        /lanyard_requests_total\{api="Certify",result!="OK"\}/,
      );
      assert.match(exprOf('LanyardNotReady'), /lanyard_ready/);
      for (const a of alerts) {
        assert.ok(a.labels?.severity !== undefined, `${a.alert ?? ''}: no severity`);
        assert.ok(a.annotations?.summary !== undefined, `${a.alert ?? ''}: no summary`);
      }
    });

    it('alerts when no replica is scraped at all, which the readiness alerts cannot see', () => {
      // max by (namespace) (lanyard_ready) < 1 yields nothing when there is no lanyard_ready series
      const watched = absentSelectorOf(exprOf('LanyardNotScraped'));
      assert.ok(watched !== undefined, 'LanyardNotScraped is absent(<selector>)');
      assert.equal(watched.metric, 'lanyard_ready');
      assert.ok(select(samples, watched).length > 0, 'silent while the issuer is scraped');
      assert.equal(select([], watched).length, 0, 'fires when nothing is scraped');
      const rule = alerts.find((a) => a.alert === 'LanyardNotScraped');
      assert.equal(rule?.labels?.severity, 'critical');
    });

    it('every rule is valid PromQL (Prometheus grammar)', () => {
      for (const a of alerts) assert.deepEqual(promqlErrors(String(a.expr)), [], a.alert);
      assert.notDeepEqual(promqlErrors('sum(rate(lanyard_ready[5m]) >'), []);
    });

    it('every series a rule selects is exposed by the issuer, with the labels it groups by', () => {
      // labels Prometheus adds to every target of a ServiceMonitor
      const targetLabels = new Set([
        'namespace',
        'pod',
        'service',
        'job',
        'instance',
        'endpoint',
        'container',
      ]);
      for (const a of alerts) {
        const { selectors, groupingLabels } = selectorsOf(String(a.expr));
        assert.ok(selectors.length > 0);
        for (const s of selectors) {
          const picked = select(samples, s);
          assert.ok(picked.length > 0, `${a.alert ?? ''}: ${s.text} selects nothing the issuer exposes`);
          for (const l of groupingLabels)
            if (!targetLabels.has(l))
              assert.ok(
                picked.every((p) => p.labels[l] !== undefined),
                `${a.alert ?? ''}: ${s.metric} has no label ${l}`,
              );
        }
      }
      // the error ratio's numerator saw the UNAUTHENTICATED call, its denominator both calls
      const ratio = selectorsOf(exprOf('LanyardCertifyErrorRatioHigh')).selectors;
      assert.deepEqual(
        ratio.map((s) => select(samples, s).reduce((n, x) => n + x.value, 0)),
        [1, 2],
      );
    });
  });
});

describe('cert-manager and trust-manager', () => {
  const clusterIssuer = load('cert-manager/cluster-issuer.yaml')[0] as unknown as IClusterIssuer;
  const bundle = load('cert-manager/trust-manager-bundle.yaml')[0] as unknown as IBundle;
  const serve = parseServe(container);

  for (const cluster of ['east', 'west']) {
    it(`the ${cluster} issuer Certificate is an ECDSA P-256 CA, short-lived, renewed before a leaf lifetime is left`, () => {
      const cert = load(`cert-manager/issuer-${cluster}.yaml`)[0] as unknown as ICertificate;
      assert.equal(cert.metadata?.namespace, undefined, 'applied with -n into the issuer namespace');
      assert.equal(cert.spec.secretName, volumeOf(deployment, 'issuer').secret?.secretName);
      assert.equal(cert.spec.isCA, true);
      assert.deepEqual(cert.spec.usages, ['cert sign', 'crl sign']);
      assert.equal(cert.spec.privateKey?.algorithm, 'ECDSA');
      assert.equal(cert.spec.privateKey.size, 256);
      // ca/ reads PKCS#8 "PRIVATE KEY" only; cert-manager's default PKCS1 writes "EC PRIVATE KEY"
      assert.equal(cert.spec.privateKey.encoding, 'PKCS8');
      assert.deepEqual(cert.spec.subject?.organizationalUnits, [cluster]);
      const duration = goDurationMs(cert.spec.duration ?? '');
      const renewBefore = goDurationMs(cert.spec.renewBefore ?? '');
      assert.ok(duration <= 30 * 24 * 3_600_000, 'short-lived');
      assert.ok(renewBefore < duration);
      // a leaf is never cut short by its issuer: renewal leaves more than one leaf lifetime
      assert.ok(renewBefore > serve.config.leafLifetimeMs + serve.config.clockSkewMs);
      assert.deepEqual(cert.spec.issuerRef, {
        group: 'cert-manager.io',
        kind: 'ClusterIssuer',
        name: clusterIssuer.metadata?.name,
      });
    });
  }

  it('every shipped issuer Certificate renews before LanyardIssuerExpiringSoon could fire', () => {
    const rules = load('components/prometheus/prometheusrule.yaml')[0] as unknown as IPrometheusRule;
    const rule = (rules.spec.groups ?? [])
      .flatMap((g) => g.rules ?? [])
      .find((r) => r.alert === 'LanyardIssuerExpiringSoon');
    const windowSeconds = upperBoundOf(String(rule?.expr ?? ''));
    assert.equal(windowSeconds, 7 * 86400, 'the alert is `expiry - time() < <seconds>`');
    const issuers = yamlFiles()
      .filter((f) => f.startsWith(join(DEPLOY_DIR, 'cert-manager')))
      .flatMap((f) => readDocs(f).map((d) => ({ where: d.where, obj: d.value as ICertificate })))
      .filter(({ obj }) => obj.kind === 'Certificate' && obj.spec.isCA === true);
    assert.ok(issuers.length >= 2, 'the east and west issuer Certificates');
    for (const { where, obj } of issuers) {
      const duration = goDurationMs(obj.spec.duration ?? '');
      const renewBefore = goDurationMs(obj.spec.renewBefore ?? '');
      assert.ok(duration > renewBefore, `${where}: duration > renewBefore`);
      assert.ok(renewBefore > windowSeconds * 1000, `${where}: renewed before the alert window opens`);
    }
  });

  it('the ClusterIssuer is a CA holding the anchor Secret', () => {
    assert.equal(clusterIssuer.spec.ca?.secretName, 'lanyard-anchor');
  });

  it('the trust-manager Bundle writes linkerd-identity-trust-roots/ca-bundle.crt into the issuer namespace', () => {
    const cm = volumeOf(deployment, 'trust-roots').configMap;
    assert.equal(bundle.metadata?.name, cm?.name);
    assert.equal(bundle.spec.target.configMap?.key, cm?.items?.[0]?.key);
    assert.deepEqual(bundle.spec.sources, [{ secret: { name: 'lanyard-anchor', key: 'tls.crt' } }]);
    const ns = load('overlays/east/namespace.yaml')[0];
    for (const [k, v] of Object.entries(bundle.spec.target.namespaceSelector?.matchLabels ?? {}))
      assert.equal(ns?.metadata.labels?.[k], v);
  });
});

describe('the Linkerd drop-in component', () => {
  const objs = load(
    'components/linkerd-identity/service-headless.yaml',
    'components/linkerd-identity/serving-certificate.yaml',
  );
  const patch = load('components/linkerd-identity/deployment-patch.yaml')[0] as unknown as IDeployment;

  it('serves on Service linkerd-identity-headless, port 8080, headless, to the gRPC container port', () => {
    const svc = byKind<IService>(objs, 'Service', 'linkerd-identity-headless');
    assert.equal(svc.spec?.clusterIP, 'None');
    assert.deepEqual(
      svc.spec?.ports?.map((p) => [p.name, p.port, p.targetPort]),
      [['grpc', 8080, 'grpc']],
    );
    assert.equal(containerPort(container, 'grpc'), 8080);
    assert.ok(matches(svc.spec?.selector, podLabels));
  });

  it('its TLS certificate names the identity Linkerd proxies expect of their identity service', () => {
    const cert = byKind<ICertificate>(objs, 'Certificate');
    const expected = workloadIdentity(
      { trustDomain: 'cluster.local', controlNamespace: 'linkerd' },
      { namespace: 'linkerd', name: 'linkerd-identity' },
    ).dns;
    assert.deepEqual(cert.spec.dnsNames, [expected]);
    assert.deepEqual(cert.spec.usages?.includes('server auth'), true);
    assert.equal(cert.spec.privateKey?.algorithm, 'ECDSA');
    const c = patch.spec?.template.spec?.containers[0];
    const tls = new Map((c?.env ?? []).map((e) => [e.name, e.value]));
    const mount = c?.volumeMounts?.[0];
    assert.equal(tls.get('LANYARD_TLS_CERT'), `${mount?.mountPath ?? ''}/tls.crt`);
    assert.equal(tls.get('LANYARD_TLS_KEY'), `${mount?.mountPath ?? ''}/tls.key`);
    assert.equal(patch.spec?.template.spec?.volumes?.[0]?.secret?.secretName, cert.spec.secretName);
    assert.equal(tls.get('LANYARD_TRUST_DOMAIN'), 'cluster.local');
    assert.equal(tls.get('LANYARD_CONTROL_NAMESPACE'), 'linkerd');
    assert.equal(tls.get('LANYARD_TOKEN_AUDIENCE'), 'identity.l5d.io');
    assert.equal(tls.get('LANYARD_AUTH'), 'token-review');
  });
});

describe('the jwt-auth components (--auth jwt), file by file', () => {
  const sa = byKind<IServiceAccount>(base, 'ServiceAccount');
  /** the base container with a component patch's env applied (merged by name, as kustomize does for env) */
  const patched = (patch: IDeployment): IContainer => {
    const c = patch.spec?.template.spec?.containers.find((x) => x.name === 'lanyard');
    assert.ok(c !== undefined);
    const env = [...(container.env ?? [])];
    for (const e of c.env ?? []) {
      const i = env.findIndex((x) => x.name === e.name);
      if (i >= 0) env[i] = e;
      else env.push(e);
    }
    return {
      ...container,
      env,
      volumeMounts: [...(container.volumeMounts ?? []), ...(c.volumeMounts ?? [])],
    };
  };

  it('jwt-auth (the default): fetches the JWKS from the API server with the automounted CA and token, mounts nothing', () => {
    const patch = load('components/jwt-auth/deployment-patch.yaml')[0] as unknown as IDeployment;
    assert.equal(patch.spec?.template.spec?.volumes, undefined);
    assert.equal(patch.spec?.template.spec?.containers[0]?.volumeMounts, undefined);
    const c = patched(patch);
    const { config } = parseServe(c);
    assert.equal(config.auth.kind, 'jwt');
    if (config.auth.kind !== 'jwt') return;
    assert.equal(config.auth.jwksFile, undefined);
    assert.equal(config.auth.jwksUrl, 'https://kubernetes.default.svc/openid/v1/jwks');
    assert.equal(config.auth.jwksCaFile, `${SERVICE_ACCOUNT_DIR}/ca.crt`);
    assert.equal(config.auth.jwksTokenFile, `${SERVICE_ACCOUNT_DIR}/token`);
    const automounted = automountedPaths(deployment, c, sa);
    assert.ok(
      automounted.includes(config.auth.jwksCaFile) && automounted.includes(config.auth.jwksTokenFile),
    );
    for (const p of pathsRead(config))
      assert.ok(providedPath(deployment, c, p, sa) || p === config.issuerDir, p);
  });

  it('jwt-auth-static-jwks: reads --jwks-file from the lanyard-jwks ConfigMap it mounts read-only (0440)', () => {
    const patch = load('components/jwt-auth-static-jwks/deployment-patch.yaml')[0] as unknown as IDeployment;
    const c = patched(patch);
    const { config } = parseServe(c);
    assert.equal(config.auth.kind, 'jwt');
    if (config.auth.kind !== 'jwt') return;
    assert.equal(config.auth.jwksUrl, undefined);
    const jwksFile = config.auth.jwksFile ?? '';
    const mount = mountHolding(c, jwksFile);
    assert.ok(mount !== undefined, '--jwks-file is not inside a mount');
    assert.equal(mount.readOnly, true);
    const volume = patch.spec?.template.spec?.volumes?.find((v) => v.name === mount.name);
    assert.equal(volume?.configMap?.name, 'lanyard-jwks');
    assert.equal(volume.configMap.defaultMode, 0o440);
    assert.deepEqual(
      volume.configMap.items?.map((i) => join(mount.mountPath, i.path)),
      [jwksFile],
    );
  });
});
