import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodePemOf } from '../../ca/pem.js';
import { parseCertificate } from '../../ca/index.js';
import { lanyard, startLanyard } from '../support/cli.js';
import { opensslVerify } from '../support/openssl.js';
import { defer } from '../support/cleanup.js';
import { testDir } from '../support/temp-dir.js';
import { waitFor } from '../support/wait.js';

/** `lanyard dev` on `state`, every port chosen by the system (dashboard included). */
function devArgs(state: string): string[] {
  return [
    'dev',
    '--state-dir',
    state,
    '--base-port',
    '0',
    '--admin-base-port',
    '0',
    '--dashboard-listen',
    '127.0.0.1:0',
  ];
}

describe('lanyard dev (what npm start runs)', () => {
  it('brings up east and west under one anchor, and the commands it prints work', async (t) => {
    const dir = testDir(t, 'lanyard-dev-');
    const state = join(dir, 'state');
    const dev = startLanyard(devArgs(state));
    defer(t, () => dev.stop('SIGKILL'));
    await dev.waitFor(/Press Ctrl-C to stop\./);
    // the dashboard of east and west, at the address it prints
    const dashboard = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(dev.stdout())?.[1];
    assert.ok(dashboard !== undefined, dev.stdout());
    const states = async (): Promise<string[][]> => {
      const mesh = (await (await fetch(new URL('v1/mesh', dashboard))).json()) as {
        clusters: { name: string; state: string }[];
      };
      return mesh.clusters.map((c) => [c.name, c.state]);
    };
    // each cluster is read as the dashboard starts; "pending" until its first read ends
    await waitFor(async () => (await states()).every(([, s]) => s === 'ok'), 'east and west read', 10_000);
    assert.deepEqual(await states(), [
      ['east', 'ok'],
      ['west', 'ok'],
    ]);
    const html = await (await fetch(dashboard)).text();
    for (const c of ['east', 'west']) assert.ok(html.includes(`<h3 id="cluster-${c}">${c}</h3>`), c);
    const commands = dev
      .stdout()
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('npx lanyard '));
    assert.equal(commands.length, 6, dev.stdout());
    for (const line of commands) {
      const [cmd, redirect] = line.slice('npx lanyard '.length).split(' > ') as [string, string | undefined];
      const r = lanyard(cmd.split(' '));
      assert.equal(r.code, 0, `${line}\n${r.stderr}`);
      if (redirect !== undefined) writeFileSync(redirect, r.stdout);
    }
    const anchors = decodePemOf(
      readFileSync(join(state, 'anchor', 'anchor.crt'), 'utf8'),
      'CERTIFICATE',
      'anchor',
    );
    const issuers = new Set<string>();
    for (const cluster of ['east', 'west']) {
      const chain = decodePemOf(
        readFileSync(join(state, 'workloads', `${cluster}-web`, 'tls.crt'), 'utf8'),
        'CERTIFICATE',
        'tls.crt',
      );
      const v = opensslVerify({
        leaf: chain[0] as Buffer,
        intermediates: chain.slice(1),
        anchors,
        purpose: 'sslserver',
      });
      assert.ok(v.ok, v.stderr);
      issuers.add(parseCertificate(chain[1] as Buffer).serialHex);
    }
    assert.equal(issuers.size, 2, 'each cluster has its own issuer');
    assert.equal(await dev.stop('SIGINT'), 0);
    // A second start reuses the state directory.
    const again = startLanyard(devArgs(state));
    await again.waitFor(/reusing/);
    // stopped once it serves (a signal during start-up, before its handler is installed, kills it)
    await again.waitFor(/Press Ctrl-C to stop\./);
    assert.equal(await again.stop('SIGINT'), 0);
    // A state directory with a key but not its certificate is refused before anything is served.
    rmSync(join(state, 'east', 'issuer', 'tls.crt'));
    const broken = lanyard(['dev', '--state-dir', state, '--base-port', '0', '--admin-base-port', '0']);
    assert.equal(broken.code, 1, broken.stderr);
    assert.equal(/\((ERR_[A-Z_]+)\)\s*$/m.exec(broken.stderr)?.[1], 'ERR_FILE_NOT_FOUND', broken.stderr);
    assert.doesNotMatch(broken.stdout, /Press Ctrl-C/);
  });
});
