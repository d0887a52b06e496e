// The clusters' Kubernetes API as `lanyard rotate status --kubeconfig NAME=FILE` reads it: one https
// stand-in (kube-stand-in.ts, on the east pod host) serving each cluster's PodList, where every running
// pod has a linkerd-proxy container whose LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS is what its proxy read
// at start. So rotate status measures the clean-up gate (no running proxy trusts only A) itself.
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { waitForOutput } from './process-io.js';
import { CLUSTERS, KUBE, NODE_ARGS, REPO, type StoryContext } from './story-context.js';
import type { MeshPod } from './story-pods.js';

const PORT = 6443;

export interface KubeStandIn {
  /** `--kubeconfig east=FILE --kubeconfig west=FILE` */
  readonly args: readonly string[];
  /** rewrites each cluster's PodList: these pods are the running ones */
  readonly writePods: (running: readonly MeshPod[]) => void;
}

function podList(pods: readonly MeshPod[]): unknown {
  return {
    kind: 'PodList',
    apiVersion: 'v1',
    metadata: {},
    items: pods.map((x) => ({
      metadata: { name: x.name, namespace: 'default' },
      spec: {
        containers: [
          { name: 'app' },
          {
            name: 'linkerd-proxy',
            env: [{ name: 'LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS', value: x.anchorsPem }],
          },
        ],
      },
    })),
  };
}

export async function startKubeStandIn(ctx: StoryContext): Promise<KubeStandIn> {
  const { path: p, hosts } = ctx;
  const host = hosts['east-pod'];
  mkdirSync(p('kube'), { recursive: true, mode: 0o700 });
  const made = ctx.topo.runOn(host, 'openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', p('kube', 'tls.key'), '-out', p('kube', 'tls.crt'), '-subj', '/CN=kube-api-stand-in'],
    ...['-addext', `subjectAltName=IP:${host.address}`, '-days', '1'],
  ]);
  if (made.code !== 0) throw new Error(`the stand-in's certificate: ${made.stderr}`);
  const token = randomBytes(16).toString('hex');
  const args: string[] = [];
  for (const c of CLUSTERS) {
    mkdirSync(p('kube', c), { recursive: true });
    const file = p('kube', `${c}.yaml`);
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        `current-context: ${c}`,
        'clusters:',
        `  - name: ${c}`,
        '    cluster:',
        `      server: https://${host.address}:${PORT}/${c}`,
        `      certificate-authority: ${p('kube', 'tls.crt')}`,
        'contexts:',
        `  - name: ${c}`,
        `    context: { cluster: ${c}, user: demo }`,
        'users:',
        '  - name: demo',
        `    user: { token: ${token} }`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    args.push('--kubeconfig', `${c}=${file}`);
  }
  const writePods = (running: readonly MeshPod[]): void => {
    for (const c of CLUSTERS) {
      const file = p('kube', c, 'pods.json');
      writeFileSync(`${file}.tmp`, JSON.stringify(podList(running.filter((x) => x.cluster === c))));
      renameSync(`${file}.tmp`, file);
    }
  };
  writePods([]);
  const child = ctx.topo.spawnOn(
    host,
    process.execPath,
    [
      ...[...NODE_ARGS, KUBE, '--listen', `${host.address}:${PORT}`, '--dir', p('kube')],
      ...['--cert', p('kube', 'tls.crt'), '--key', p('kube', 'tls.key'), '--token', token],
    ],
    { cwd: REPO },
  );
  await waitForOutput(child, /"listening"/, 'the Kubernetes API stand-in');
  return { args, writePods };
}
