import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { buildCsr, encodePem, fingerprint, type CertificateInfo } from '../../ca/index.js';
import type { Signer } from '../../ca/keys/index.js';
import { buildIssuerConfig } from '../../issuer/config.js';
import { startIssuer, type RunningIssuer } from '../../issuer/main.js';
import type { RotationStatus } from '../../trust-bundles/index.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { runLanyard } from '../support/cli-inproc.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { createIdentityClient, type IdentityClient } from '../support/issuer.js';
import { writeAtomicVolume } from '../support/k8s-volume.js';
import { opensslVerify } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { testKey } from '../support/pki.js';
import { opensslMutualTls } from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import { issuer, pem, rotationPki, START, type RotationPki } from './rotation-fixtures.js';

const silent = pino({ level: 'silent' });
const id = (sa: string): string => `${sa}.default.serviceaccount.identity.linkerd.cluster.local`;
type Name = 'east' | 'west';

interface Cluster {
  name: Name;
  issuerDir: string;
  bundleDir: string;
  issuer: RunningIssuer;
  client: IdentityClient;
  admin: string;
}
interface Leaf {
  chain: Buffer[];
  dir: string;
}
/** A pod that read its trust anchors once, at start (as a Linkerd proxy does). */
interface Pod {
  cluster: Name;
  tag: string;
  anchorsFile: string;
}

describe('anchor rotation by cross-signing across two clusters (fake clock, running issuers, real handshakes)', () => {
  const clock = new FakeClock(START);
  let root: string;
  let cleanup: () => void;
  let p: RotationPki;
  let crossFile: string;
  let bFile: string;
  const clusters = {} as Record<Name, Cluster>;
  const workloadKey = {} as Record<Name, { signer: Signer; keyPem: string }>;
  const workload = { east: 'web', west: 'db' } as const;
  const at = (): number => Math.floor(clock.now().getTime() / 1000);

  function pod(cluster: Name, tag: string, anchors: CertificateInfo[]): Pod {
    const anchorsFile = join(root, `pod-${cluster}-${tag}.pem`);
    writeFileSync(anchorsFile, pem(...anchors));
    return { cluster, tag, anchorsFile };
  }

  async function adminStatus(
    c: Cluster,
  ): Promise<{ anchors: { fingerprint: string }[]; issuer: { serial: string } | null }> {
    return (await (await fetch(`${c.admin}/v1/status`)).json()) as {
      anchors: { fingerprint: string }[];
      issuer: { serial: string } | null;
    };
  }

  async function setBundle(c: Cluster, anchors: CertificateInfo[]): Promise<void> {
    writeAtomicVolume(c.bundleDir, { 'ca-bundle.crt': pem(...anchors) });
    const want = anchors
      .map((a) => fingerprint(a.der))
      .sort()
      .join(',');
    await waitFor(
      async () =>
        (await adminStatus(c)).anchors
          .map((a) => a.fingerprint)
          .sort()
          .join(',') === want,
      `${c.name} to serve the new bundle`,
      { timeoutMs: 10_000, intervalMs: 25 },
    );
  }

  /** Puts an issuer certificate (and the chain above it) and key in place and waits for the hot reload. */
  async function install(c: Cluster, chain: CertificateInfo[], keyPem: string): Promise<void> {
    writeAtomicVolume(c.issuerDir, { 'tls.crt': pem(...chain), 'tls.key': keyPem });
    const serial = chain[0]?.serialHex ?? '';
    await waitFor(
      async () =>
        (await adminStatus(c)).issuer?.serial.replaceAll(':', '').toLowerCase() === serial.toLowerCase(),
      `${c.name} to load its new issuer`,
      { timeoutMs: 10_000, intervalMs: 25 },
    );
  }

  async function certify(name: Name, tag: string): Promise<Leaf> {
    const sa = workload[name];
    const res = await clusters[name].client.certify({
      identity: id(sa),
      token: Buffer.from(`sa:default:${sa}`),
      certificate_signing_request: buildCsr(workloadKey[name].signer, { dnsNames: [id(sa)] }),
    });
    const dir = join(root, 'workloads', `${name}-${tag}`);
    mkdirSync(dir, { recursive: true });
    const chain = [res.leaf_certificate, ...res.intermediate_certificates];
    writeFileSync(join(dir, 'tls.crt'), chain.map((d) => encodePem('CERTIFICATE', d)).join(''));
    writeFileSync(join(dir, 'tls.key'), workloadKey[name].keyPem, { mode: 0o600 });
    return { chain, dir };
  }

  function verifies(leaf: Leaf, anchors: CertificateInfo[]): boolean {
    return opensslVerify({
      leaf: leaf.chain[0] as Buffer,
      intermediates: leaf.chain.slice(1),
      anchors: anchors.map((a) => a.der),
      purpose: 'sslclient',
      atSeconds: at(),
    }).ok;
  }

  /** Every east pod with every west pod, both directions of the mutual handshake, with these leaves. */
  async function assertMesh(tag: string, pods: Pod[], leaves: Record<Name, Leaf>): Promise<void> {
    for (const e of pods.filter((x) => x.cluster === 'east'))
      for (const w of pods.filter((x) => x.cluster === 'west')) {
        const r = await opensslMutualTls(
          {
            cert: join(leaves.east.dir, 'tls.crt'),
            key: join(leaves.east.dir, 'tls.key'),
            ca: e.anchorsFile,
            expectPeer: id('db'),
          },
          {
            cert: join(leaves.west.dir, 'tls.crt'),
            key: join(leaves.west.dir, 'tls.key'),
            ca: w.anchorsFile,
            expectPeer: id('web'),
          },
          { atSeconds: at() },
        );
        assert.ok(r.ok, `${tag}: east pod ${e.tag} ⇄ west pod ${w.tag}\n${r.client}\n${r.server}`);
      }
  }

  async function status(extra: string[] = []): Promise<{ code: number; s: RotationStatus }> {
    const r = await runLanyard(
      [
        'rotate',
        'status',
        '--cluster',
        `east=${clusters.east.admin}`,
        '--cluster',
        `west=${clusters.west.admin}`,
        ...extra,
        '--json',
      ],
      { clock },
    );
    return { code: r.code, s: JSON.parse(r.out) as RotationStatus };
  }

  before(async () => {
    ({ dir: root, cleanup } = tempDir('lanyard-rotation-'));
    p = await rotationPki();
    crossFile = join(root, 'cross.crt');
    writeFileSync(crossFile, pem(p.cross));
    bFile = join(root, 'anchor-b');
    mkdirSync(bFile, { mode: 0o700 });
    writeFileSync(join(bFile, 'anchor.crt'), pem(p.B.cert));
    writeFileSync(join(bFile, 'anchor.key'), p.B.keyPem, { mode: 0o600 });
    for (const name of ['east', 'west'] as const) {
      workloadKey[name] = await testKey('p256');
      const issuerDir = join(root, name, 'issuer');
      const bundleDir = join(root, name, 'trust-roots');
      const old = p.oldIssuer[name];
      assert.ok(old);
      writeAtomicVolume(issuerDir, { 'tls.crt': pem(old.cert), 'tls.key': old.keyPem });
      writeAtomicVolume(bundleDir, { 'ca-bundle.crt': pem(p.A.cert) });
      const issuer = await startIssuer(
        buildIssuerConfig({
          issuerDir,
          trustAnchors: join(bundleDir, 'ca-bundle.crt'),
          listen: '127.0.0.1:0',
          adminListen: '127.0.0.1:0',
          cluster: name,
          trustDomain: 'cluster.local',
          controlNamespace: 'linkerd',
          auth: 'jwt',
          jwksFile: '/dev/null',
          tokenIssuer: 'unused',
          tokenAudience: 'identity.l5d.io',
          leafKeyTypes: 'p256',
          maxInFlight: '64',
          pollInterval: 50,
          logLevel: 'silent',
        }),
        { logger: silent, clock, authenticator: scriptedAuthenticator() },
      );
      clusters[name] = {
        name,
        issuerDir,
        bundleDir,
        issuer,
        client: createIdentityClient(`127.0.0.1:${issuer.grpcAddress.port}`),
        admin: `http://127.0.0.1:${issuer.adminAddress.port}`,
      };
    }
  });

  after(async () => {
    for (const c of Object.values(clusters)) {
      c.client.close();
      await c.issuer.shutdown(1000);
    }
    cleanup();
  });

  it('walks phases 1 → 6 with every pod pair handshaking and no pod restarted; flags a too-early drop', async () => {
    const pods = [pod('east', 'A', [p.A.cert]), pod('west', 'A', [p.A.cert])];
    const given = ['--new-anchor', bFile, '--cross-signed', crossFile];
    let st = await status();
    assert.equal(st.s.phase, 'steady');
    assert.equal(st.code, 0);
    const steadyLeaves = { east: await certify('east', 'steady'), west: await certify('west', 'steady') };
    await assertMesh('steady', pods, steadyLeaves);

    // Phase 1 → 2: B, the cross certificate and the B-issuers exist; switching is safe.
    st = await status(given);
    assert.equal(st.s.phase, 1);
    assert.equal(st.s.next.action, 'switch-issuers');
    assert.equal(st.code, 0, JSON.stringify(st.s.next));
    clock.advance(HOUR);
    for (const name of ['east', 'west'] as const) {
      const b = p.newIssuer[name];
      assert.ok(b);
      await install(clusters[name], [b.cert, p.cross], b.keyPem);
      const leaf = await certify(name, `switched-${name}`);
      assert.ok(
        verifies(leaf, [p.A.cert]) && verifies(leaf, [p.B.cert]),
        `${name}'s new leaf verifies under {A} alone and {B} alone`,
      );
    }
    st = await status(given);
    assert.deepEqual(
      st.s.clusters.map((c) => [c.phase.phase, c.issuer.kind]),
      [
        [2, 'new-with-cross'],
        [2, 'new-with-cross'],
      ],
    );
    assert.equal(st.s.next.action, 'add-new-anchor');
    assert.equal(st.code, 0);
    await assertMesh('phase 2', pods, {
      east: await certify('east', 'p2'),
      west: await certify('west', 'p2'),
    });
    await assertMesh('phase 2, leaves of the A-issuers', pods, steadyLeaves);

    // Phase 3: B joins every bundle; pods started now trust both.
    await setBundle(clusters.east, [p.A.cert, p.B.cert]);
    await setBundle(clusters.west, [p.A.cert, p.B.cert]);
    pods.push(pod('east', 'AB', [p.A.cert, p.B.cert]), pod('west', 'AB', [p.A.cert, p.B.cert]));
    st = await status(given);
    assert.equal(st.s.phase, 4);
    assert.equal(st.s.next.action, 'wait-old-leaves');
    assert.equal(st.code, 3);
    await assertMesh('phase 4', pods, {
      east: await certify('east', 'p4'),
      west: await certify('west', 'p4'),
    });
    await assertMesh('phase 4, leaves of the A-issuers', pods, steadyLeaves);

    // Dropping A now would break the A-issuers' leaves still alive: trust is broken, exit 1.
    await setBundle(clusters.west, [p.B.cert]);
    st = await status(given);
    assert.equal(st.code, 1);
    assert.equal(st.s.earlyRemovals[0]?.anchorFingerprint, fingerprint(p.A.cert.der));
    await setBundle(clusters.west, [p.A.cert, p.B.cert]);

    // Phase 5: once no leaf of an A-issuer can be alive, A leaves the bundles; pods started now trust B only.
    clock.advance(25 * HOUR);
    st = await status(given);
    assert.equal(st.s.next.action, 'drop-old-anchors');
    assert.equal(st.code, 0);
    await setBundle(clusters.east, [p.B.cert]);
    await setBundle(clusters.west, [p.B.cert]);
    pods.push(pod('east', 'B', [p.B.cert]), pod('west', 'B', [p.B.cert]));
    st = await status(given);
    assert.deepEqual(
      st.s.clusters.map((c) => c.phase.phase),
      [5, 5],
    );
    assert.equal(st.s.next.action, 'wait-old-proxies');
    assert.deepEqual(st.s.next.missing, ['kubeconfig']);
    assert.equal(st.code, 3);
    await assertMesh('phase 5: A-only, A+B and B-only pods', pods, {
      east: await certify('east', 'p5'),
      west: await certify('west', 'p5'),
    });

    // Phase 6, once the A-only pods have been replaced at their own pace: stop serving the cross certificate.
    const remaining = pods.filter((x) => x.tag !== 'A');
    for (const name of ['east', 'west'] as const) {
      const b = await issuer(p.B, name, clock.now().getTime());
      await install(clusters[name], [b.cert], b.keyPem);
    }
    st = await status(given);
    assert.equal(st.s.phase, 'steady');
    assert.equal(st.code, 0);
    const done = { east: await certify('east', 'done'), west: await certify('west', 'done') };
    await assertMesh('done', remaining, done);
    // why phase 6 waits for the A-only pods: without the cross certificate, {A} alone refuses the new leaves
    assert.ok(verifies(done.east, [p.B.cert]) && !verifies(done.east, [p.A.cert]));
  });
});
