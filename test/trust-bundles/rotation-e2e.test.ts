import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { buildCsr, encodePem, fingerprint, systemClock, type CertificateInfo } from '../../ca/index.js';
import { createAnchorCertificate, createIssuerCertificate } from '../../ca/profiles.js';
import { createKeyObjectSigner, generateKey, type Signer } from '../../ca/keys/index.js';
import { buildIssuerConfig } from '../../issuer/config.js';
import { startIssuer, type RunningIssuer } from '../../issuer/main.js';
import type { RotationStatus } from '../../trust-bundles/rotation.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { runLanyard } from '../support/cli-inproc.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { createIdentityClient, type IdentityClient } from '../support/issuer.js';
import { writeAtomicVolume } from '../support/k8s-volume.js';
import { opensslVerify, type OpensslResult } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { testKey } from '../support/pki.js';
import { opensslMutualTls, type HandshakeResult } from '../support/tls.js';
import { waitFor } from '../support/wait.js';

const silent = pino({ level: 'silent' });
const id = (sa: string): string => `${sa}.default.serviceaccount.identity.linkerd.cluster.local`;

interface Anchor {
  signer: Signer;
  cert: CertificateInfo;
}
interface Cluster {
  name: string;
  issuerDir: string;
  bundleDir: string;
  issuer: RunningIssuer;
  client: IdentityClient;
  admin: string;
  bundle: CertificateInfo[];
}
interface Leaf {
  chain: Buffer[];
  dir: string;
}

describe('trust-anchor rotation across two clusters (fake clock, real certificates, real handshakes)', () => {
  const clock = new FakeClock(systemClock.now());
  let root: string;
  let cleanup: () => void;
  let oldAnchor: Anchor;
  let newAnchor: Anchor;
  const clusters: Record<'east' | 'west', Cluster> = {} as Record<'east' | 'west', Cluster>;
  const workloadKey = {} as Record<'east' | 'west', { signer: Signer; keyPem: string }>;
  const workload = { east: 'web', west: 'db' } as const;

  async function makeAnchor(cn: string): Promise<Anchor> {
    const signer = createKeyObjectSigner(await generateKey('p256'));
    return { signer, cert: await createAnchorCertificate({ signer, now: clock.now(), commonName: cn }) };
  }

  async function issuerFiles(anchor: Anchor, cluster: string): Promise<Record<string, string>> {
    const { signer, keyPem } = await testKey('p256');
    const cert = await createIssuerCertificate({
      anchor: anchor.cert,
      anchorSigner: anchor.signer,
      issuerPublicKeyDer: signer.publicKeyDer,
      now: clock.now(),
      cluster,
    });
    return {
      'tls.crt': encodePem('CERTIFICATE', cert.der),
      'tls.key': keyPem,
    };
  }

  /** Replaces a cluster's bundle (as a ConfigMap update) and waits until its issuer serves it. */
  async function setBundle(c: Cluster, anchors: CertificateInfo[]): Promise<void> {
    c.bundle = anchors;
    writeAtomicVolume(c.bundleDir, {
      'ca-bundle.crt': anchors.map((a) => encodePem('CERTIFICATE', a.der)).join(''),
    });
    const want = anchors
      .map((a) => fingerprint(a.der))
      .sort()
      .join(',');
    await waitFor(
      async () => {
        const s = (await (await fetch(`${c.admin}/v1/status`)).json()) as {
          anchors: { fingerprint: string }[];
        };
        return (
          s.anchors
            .map((a) => a.fingerprint)
            .sort()
            .join(',') === want
        );
      },
      `${c.name} to serve the new bundle`,
      { timeoutMs: 10_000, intervalMs: 25 },
    );
  }

  /** Replaces a cluster's issuer Secret with one under `anchor` and waits for the hot reload. */
  async function reissue(c: Cluster, anchor: Anchor): Promise<void> {
    writeAtomicVolume(c.issuerDir, await issuerFiles(anchor, c.name));
    const fp = fingerprint(anchor.cert.der);
    await waitFor(
      async () => {
        const s = (await (await fetch(`${c.admin}/v1/status`)).json()) as {
          issuer: { anchorFingerprint: string } | null;
        };
        return s.issuer?.anchorFingerprint === fp;
      },
      `${c.name} to load its new issuer`,
      { timeoutMs: 10_000, intervalMs: 25 },
    );
  }

  /** A workload of cluster `name` gets a leaf from its own cluster's issuer; files for openssl. */
  async function certify(name: 'east' | 'west', tag: string): Promise<Leaf> {
    const c = clusters[name];
    const sa = workload[name];
    const res = await c.client.certify({
      identity: id(sa),
      token: Buffer.from(`sa:default:${sa}`),
      certificate_signing_request: buildCsr(workloadKey[name].signer, { dnsNames: [id(sa)] }),
    });
    const dir = join(root, 'workloads', `${name}-${tag}`);
    mkdirSync(dir, { recursive: true });
    const chain = [res.leaf_certificate, ...res.intermediate_certificates];
    writeFileSync(join(dir, 'tls.crt'), chain.map((d) => encodePem('CERTIFICATE', d)).join(''));
    writeFileSync(join(dir, 'tls.key'), workloadKey[name].keyPem, {
      mode: 0o600,
    });
    return { chain, dir };
  }

  const at = (): number => Math.floor(clock.now().getTime() / 1000);

  function verifiesUnder(leaf: Leaf, bundleOf: Cluster): boolean {
    return verifyUnder(leaf, bundleOf).ok;
  }

  function verifyUnder(leaf: Leaf, bundleOf: Cluster): OpensslResult {
    return opensslVerify({
      leaf: leaf.chain[0] as Buffer,
      intermediates: leaf.chain.slice(1),
      anchors: bundleOf.bundle.map((a) => a.der),
      purpose: 'sslclient',
      atSeconds: at(),
    });
  }

  /** east's workload serves, west's connects; each side trusts its own cluster's current bundle. */
  async function handshake(eastLeaf: Leaf, westLeaf: Leaf): Promise<boolean> {
    return (await handshakeResult(eastLeaf, westLeaf)).ok;
  }

  async function handshakeResult(eastLeaf: Leaf, westLeaf: Leaf): Promise<HandshakeResult> {
    const bundleFile = (c: Cluster): string => {
      const p = join(root, `${c.name}-bundle-${at()}-${c.bundle.length}.pem`);
      writeFileSync(p, c.bundle.map((a) => encodePem('CERTIFICATE', a.der)).join(''));
      return p;
    };
    return opensslMutualTls(
      {
        cert: join(eastLeaf.dir, 'tls.crt'),
        key: join(eastLeaf.dir, 'tls.key'),
        ca: bundleFile(clusters.east),
        expectPeer: id('db'),
      },
      {
        cert: join(westLeaf.dir, 'tls.crt'),
        key: join(westLeaf.dir, 'tls.key'),
        ca: bundleFile(clusters.west),
        expectPeer: id('web'),
      },
      { atSeconds: at() },
    );
  }

  async function assertCrossTrust(tag: string): Promise<{ east: Leaf; west: Leaf }> {
    const east = await certify('east', tag);
    const west = await certify('west', tag);
    assert.ok(verifiesUnder(east, clusters.west), `${tag}: east's leaf verifies under west's bundle`);
    assert.ok(verifiesUnder(west, clusters.east), `${tag}: west's leaf verifies under east's bundle`);
    assert.ok(
      verifiesUnder(east, clusters.east) && verifiesUnder(west, clusters.west),
      `${tag}: each verifies at home`,
    );
    assert.ok(await handshake(east, west), `${tag}: mutual TLS between east and west workloads`);
    return { east, west };
  }

  async function status(): Promise<{ code: number; s: RotationStatus }> {
    const r = await runLanyard(
      [
        'rotate',
        'status',
        '--cluster',
        `east=${clusters.east.admin}`,
        '--cluster',
        `west=${clusters.west.admin}`,
        '--json',
      ],
      { clock },
    );
    return { code: r.code, s: JSON.parse(r.out) as RotationStatus };
  }

  before(async () => {
    ({ dir: root, cleanup } = tempDir('lanyard-rotation-'));
    oldAnchor = await makeAnchor('root-2026.linkerd.cluster.local');
    workloadKey.east = await testKey('p256');
    workloadKey.west = await testKey('p256');
    for (const name of ['east', 'west'] as const) {
      const issuerDir = join(root, name, 'issuer');
      const bundleDir = join(root, name, 'trust-roots');
      writeAtomicVolume(issuerDir, await issuerFiles(oldAnchor, name));
      writeAtomicVolume(bundleDir, { 'ca-bundle.crt': encodePem('CERTIFICATE', oldAnchor.cert.der) });
      const config = buildIssuerConfig({
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
      });
      const issuer = await startIssuer(config, {
        logger: silent,
        clock,
        authenticator: scriptedAuthenticator(),
      });
      clusters[name] = {
        name,
        issuerDir,
        bundleDir,
        issuer,
        client: createIdentityClient(`127.0.0.1:${issuer.grpcAddress.port}`),
        admin: `http://127.0.0.1:${issuer.adminAddress.port}`,
        bundle: [oldAnchor.cert],
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

  it('walks steady → phase 0 → 1 → 2 → 3 → steady with cross-cluster trust at every step, and flags an early removal', async () => {
    // Steady state: one anchor.
    let st = await status();
    assert.equal(st.s.phase, 'steady');
    assert.equal(st.code, 0);
    await assertCrossTrust('steady');

    // Phase 0 → 1: the new anchor goes into every bundle.
    clock.advance(HOUR);
    newAnchor = await makeAnchor('root-2027.linkerd.cluster.local');
    await setBundle(clusters.east, [oldAnchor.cert, newAnchor.cert]);
    st = await status();
    assert.equal(st.s.phase, 0);
    assert.deepEqual(st.s.next.clusters, ['west']);
    assert.equal(st.s.next.safe, true);
    await assertCrossTrust('phase0');
    await setBundle(clusters.west, [oldAnchor.cert, newAnchor.cert]);
    st = await status();
    assert.equal(st.s.phase, 1);
    assert.equal(st.s.next.action, 'reissue-issuers');
    assert.equal(st.s.next.safe, true);
    const underOld = await assertCrossTrust('phase1');

    // Phase 1 → 2: both issuers re-issued under the new anchor, hot-reloaded.
    clock.advance(HOUR);
    await reissue(clusters.east, newAnchor);
    await assertCrossTrust('phase1-east-reissued');
    await reissue(clusters.west, newAnchor);
    st = await status();
    assert.equal(st.s.phase, 2);
    assert.equal(st.s.next.action, 'wait');
    assert.equal(st.s.next.safe, false, 'removing the old anchor is not safe yet');
    assert.ok(Date.parse(st.s.next.waitUntil ?? '') > clock.now().getTime(), 'it says until when to wait');
    await assertCrossTrust('phase2');
    // Leaves issued under the old anchor are still valid and still trusted everywhere.
    assert.ok(verifiesUnder(underOld.east, clusters.west) && verifiesUnder(underOld.west, clusters.east));
    assert.ok(await handshake(underOld.east, underOld.west));

    // Removing the old anchor now is reported unsafe, and here is the failure it would cause.
    await setBundle(clusters.west, [newAnchor.cert]);
    st = await status();
    assert.equal(st.code, 1, 'rotate status exits 1');
    assert.ok(st.s.problems.length > 0);
    assert.equal(st.s.next.safe, false);
    // Refused because the chain no longer reaches an anchor west trusts: X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY (20).
    const refused = verifyUnder(underOld.east, clusters.west);
    assert.equal(refused.ok, false, "west now refuses east's still-valid old leaf");
    assert.match(`${refused.stdout}\n${refused.stderr}`, /\berror 20 at /);
    const hs = await handshakeResult(underOld.east, underOld.west);
    assert.equal(hs.ok, false, 'the handshake fails');
    assert.match(
      hs.client,
      /verify error:num=20\b/,
      "west's client refuses east's certificate with error 20",
    );
    await setBundle(clusters.west, [oldAnchor.cert, newAnchor.cert]);
    assert.ok(await handshake(underOld.east, underOld.west), 'restoring the anchor restores the handshake');

    // Phase 3: once every leaf under the old anchor has expired, removal is safe.
    clock.advance(25 * HOUR);
    st = await status();
    assert.equal(st.s.phase, 3);
    assert.equal(st.s.next.action, 'remove-old-anchors');
    assert.equal(st.s.next.safe, true);
    assert.deepEqual([...st.s.next.clusters].sort(), ['east', 'west']);
    await assertCrossTrust('phase3');
    await setBundle(clusters.east, [newAnchor.cert]);
    await setBundle(clusters.west, [newAnchor.cert]);
    st = await status();
    assert.equal(st.s.phase, 'steady');
    assert.equal(st.code, 0);
    assert.equal(st.s.newAnchor?.fingerprint, fingerprint(newAnchor.cert.der));
    await assertCrossTrust('done');

    // And the mesh check agrees.
    const check = await runLanyard(
      ['check', '--cluster', `east=${clusters.east.admin}`, '--cluster', `west=${clusters.west.admin}`],
      { clock },
    );
    assert.equal(check.code, 0, check.out);
  });
});
