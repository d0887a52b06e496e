import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { buildCsr, parseCertificate, parseCertificatesPem } from '../../ca/index.js';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { lanyard, prepareIssuerFiles, startServe } from '../support/cli.js';
import { startCluster, type ServeCluster } from '../support/cluster.js';
import { createIdentityClient } from '../support/issuer.js';
import { waitFor } from '../support/wait.js';
import { testDir } from '../support/temp-dir.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

describe('lanyard serve --workers 2 (node:cluster)', () => {
  let cluster: ServeCluster;

  before(async () => {
    cluster = await startCluster('lanyard-cluster-');
  });
  after(() => cluster.stop());

  it('serves Certify from both workers, and the primary reports their issuance and metrics summed', async () => {
    const token = Buffer.from(readFileSync(join(cluster.dir, 'web.token'), 'utf8'));
    const key = createKeyObjectSigner(await generateKey('p256'));
    const csr = buildCsr(key, { dnsNames: [ID] });
    // Separate connections (distinct channel options) are spread over the workers.
    const clients = [1, 2, 3, 4, 5, 6].map((i) =>
      createIdentityClient(`127.0.0.1:${cluster.grpcPort}`, grpc.credentials.createInsecure(), {
        'lanyard.test-connection': i,
      }),
    );
    const calls = clients.flatMap((c) =>
      Array.from({ length: 5 }, () => c.certify({ identity: ID, token, certificate_signing_request: csr })),
    );
    const results = await Promise.allSettled(calls);
    for (const c of clients) c.close();
    assert.deepEqual(
      results.filter((r) => r.status === 'rejected').map((r) => String(r.reason)),
      [],
    );
    // Workers report issuance to the primary within 100 ms.
    await new Promise((r) => setTimeout(r, 400));
    const status = (await (await fetch(`${cluster.admin}/v1/status`)).json()) as {
      certificatesIssued: number;
      issuedByAnchor: { issued: number }[];
    };
    assert.equal(status.certificatesIssued, 30);
    assert.equal(status.issuedByAnchor[0]?.issued, 30);
    const metrics = await (await fetch(`${cluster.admin}/metrics`)).text();
    assert.match(metrics, /lanyard_requests_total\{api="Certify",result="OK"\} 30\b/);
    const workers = new Set(
      cluster.serve
        .stderr()
        .split('\n')
        .filter((l) => l.includes('"rpc":"Certify"'))
        .map((l) => (JSON.parse(l) as { worker?: number }).worker),
    );
    assert.deepEqual([...workers].sort(), [1, 2], 'both workers served calls');
  });

  it('reloads a renewed issuer in the primary alone and hands it to both workers', async () => {
    const created = lanyard([
      'issuer',
      'create',
      '--anchor',
      join(cluster.dir, 'anchor'),
      '--cluster',
      'east',
      '--out',
      join(cluster.dir, 'renewed'),
    ]);
    assert.equal(created.code, 0, created.stderr);
    for (const name of readdirSync(join(cluster.dir, 'renewed')))
      copyFileSync(join(cluster.dir, 'renewed', name), join(cluster.dir, 'east', name));
    const renewed = parseCertificatesPem(
      readFileSync(join(cluster.dir, 'renewed', 'tls.crt'), 'utf8'),
      'renewed',
    )[0]?.serialHex;
    let serial: string | undefined;
    for (let i = 0; i < 150 && serial !== renewed; i++) {
      await new Promise((r) => setTimeout(r, 100));
      serial = (
        (await (await fetch(`${cluster.admin}/v1/status`)).json()) as { issuer: { serial: string } | null }
      ).issuer?.serial;
    }
    assert.equal(serial, renewed, 'the primary loaded the renewed issuer');
    const token = Buffer.from(readFileSync(join(cluster.dir, 'web.token'), 'utf8'));
    const csr = buildCsr(createKeyObjectSigner(await generateKey('p256')), { dnsNames: [ID] });
    const clients = [11, 12, 13, 14, 15, 16].map((i) =>
      createIdentityClient(`127.0.0.1:${cluster.grpcPort}`, grpc.credentials.createInsecure(), {
        'lanyard.test-connection': i,
      }),
    );
    const served = await Promise.all(
      clients.map(async (c) => {
        const res = await c.certify({ identity: ID, token, certificate_signing_request: csr });
        c.close();
        return parseCertificate(res.intermediate_certificates[0] as Buffer).serialHex;
      }),
    );
    assert.deepEqual(new Set(served), new Set([renewed]), 'every worker signs with the renewed issuer');
    const credentialLines = cluster.serve
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"event":"credential_'))
      .map((l) => JSON.parse(l) as { worker?: number });
    assert.ok(credentialLines.length >= 2);
    assert.deepEqual(
      credentialLines.filter((l) => l.worker !== undefined),
      [],
      'workers read no credential files',
    );
  });

  it('replaces a worker that dies after start and keeps serving with two workers', async () => {
    const [victim] = childPids(cluster.serve.child.pid ?? -1);
    assert.ok(victim !== undefined);
    process.kill(victim, 'SIGKILL');
    let pids: number[] = [];
    await waitFor(
      () => {
        pids = childPids(cluster.serve.child.pid ?? -1);
        return (
          pids.length === 2 &&
          !pids.includes(victim) &&
          /"event":"worker_exited"/.test(cluster.serve.stderr())
        );
      },
      'a replacement worker',
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.equal(pids.length, 2, 'two workers again');
    assert.ok(!pids.includes(victim));
    assert.equal(cluster.serve.child.exitCode, null, 'the primary still runs');
    const ready = await fetch(`${cluster.admin}/ready`);
    assert.equal(ready.status, 200);
  });

  it('drains the workers and exits 0 on SIGTERM', async () => {
    assert.equal(await cluster.serve.stop('SIGTERM'), 0);
    assert.match(cluster.serve.stderr(), /"event":"stopped"/);
  });
});

describe('lanyard serve --workers 2 when a worker cannot start', () => {
  it('exits 1 with ERR_WORKER_START instead of forking failing workers forever', async (t) => {
    const dir = testDir(t, 'lanyard-cluster-fail-');
    prepareIssuerFiles(dir, []);
    // the primary loads the issuer; each worker's authenticator finds no JWKS file
    const serve = startServe(dir, ['--workers', '2', '--jwks-file', join(dir, 'missing.json')]);
    const code = await Promise.race([
      new Promise<number | null>((resolve) => {
        serve.child.once('exit', resolve);
      }),
      new Promise<'hung'>((resolve) =>
        setTimeout(() => {
          resolve('hung');
        }, 30_000).unref(),
      ),
    ]);
    if (code === 'hung') await serve.stop('SIGKILL');
    assert.equal(code, 1);
    assert.match(serve.stderr(), /\(ERR_AUTHENTICATOR_UNAVAILABLE\)/);
    assert.match(serve.stderr(), /\(ERR_WORKER_START\)/);
  });
});

/** Live child processes of `pid`, from /proc (a process's 4th stat field is its parent). */
function childPids(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return fields[1] === String(pid) && fields[0] !== 'Z' ? [Number(d)] : [];
      } catch {
        return [];
      }
    });
}
