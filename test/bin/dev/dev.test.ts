// `lanyard dev` state directory: keys are written with their certificates, a run stopped part-way is
// finished by the next one, and a half-made or unusable state fails with its code before serving.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { isLanyardError, systemClock, type Clock } from '../../../ca/index.js';
import { createLogger } from '../../../issuer/logger.js';
import { startDevEnvironment } from '../../../bin/dev/dev.js';
import { openssl } from '../../support/openssl.js';
import { testPki } from '../../support/pki.js';
import { DAY } from '../../support/clock.js';
import { testDir } from '../../support/temp-dir.js';

const silent = createLogger({ level: 'silent' });

/** Starts the dev environment on free ports; stops it again at once (only the state matters here). */
async function runDev(stateDir: string, clock: Clock = systemClock): Promise<{ created: boolean }> {
  const env = await startDevEnvironment({ stateDir, basePort: 0, adminBasePort: 0, clock, logger: silent });
  try {
    for (const c of env.clusters) assert.equal(c.issuer.status.ready(), true, `${c.name} is ready`);
  } finally {
    await env.shutdown();
  }
  return { created: env.created };
}

/** The code a dev start fails with (undefined: it started). */
async function failureOf(stateDir: string): Promise<{ code: string; message: string } | undefined> {
  try {
    await runDev(stateDir);
    return undefined;
  } catch (err) {
    if (!isLanyardError(err)) throw err;
    return { code: err.code, message: err.message };
  }
}

/** Every file under `dir`, relative. */
function files(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix)).flatMap((name) => {
    const rel = join(prefix, name);
    return statSync(join(dir, rel)).isDirectory() ? files(dir, rel) : [rel];
  });
}

/** openssl's verdict on DIR/east|west/issuer/tls.crt under DIR/anchor/anchor.crt */
function issuerChains(state: string, cluster: string): boolean {
  return openssl([
    'verify',
    '-x509_strict',
    '-CAfile',
    join(state, 'anchor', 'anchor.crt'),
    join(state, cluster, 'issuer', 'tls.crt'),
  ]).ok;
}

describe('lanyard dev state directory', () => {
  it('never leaves a key without its certificate when a first run fails part-way, and the next run finishes it', async (t) => {
    const dir = testDir(t, 'lanyard-dev-state-');
    const state = join(dir, 'state');
    // a clock that jumps past the anchor's lifetime after its first reading: the anchor is made,
    // then making east's issuer fails (the anchor has expired by then)
    let readings = 0;
    const start = systemClock.now().getTime();
    const jumping: Clock = { now: () => new Date(readings++ === 0 ? start : start + 20 * 365 * DAY) };
    await assert.rejects(runDev(state, jumping), { code: 'ERR_CERT_EXPIRED' });
    const written = files(state);
    for (const key of written.filter((f) => f.endsWith('.key') && !f.endsWith('signing.key'))) {
      const cert = key.replace(/\.key$/, '.crt');
      assert.ok(written.includes(cert), `${key} is written with ${cert} (found ${written.join(', ')})`);
    }
    assert.ok(written.includes(join('anchor', 'anchor.crt')), written.join(', '));
    const anchorBefore = readFileSync(join(state, 'anchor', 'anchor.crt'));

    assert.equal((await runDev(state)).created, true, 'the second run creates what is missing');
    assert.ok(readFileSync(join(state, 'anchor', 'anchor.crt')).equals(anchorBefore), 'same anchor');
    for (const cluster of ['east', 'west']) assert.ok(issuerChains(state, cluster), cluster);
    assert.equal(statSync(join(state, 'east', 'issuer', 'tls.key')).mode & 0o777, 0o600);
    assert.equal((await runDev(state)).created, false, 'a complete state is reused as it is');
  });

  it('recreates a missing issuer directory under the existing anchor and puts back a missing ca.crt and jwks.json', async (t) => {
    const dir = testDir(t, 'lanyard-dev-state-');
    const state = join(dir, 'state');
    await runDev(state);
    const anchorBefore = readFileSync(join(state, 'anchor', 'anchor.crt'));
    const westBefore = readFileSync(join(state, 'west', 'issuer', 'tls.crt'));
    rmSync(join(state, 'east', 'issuer'), { recursive: true });
    rmSync(join(state, 'west', 'issuer', 'ca.crt'));
    rmSync(join(state, 'west', 'sa-signing', 'jwks.json'));
    assert.equal((await runDev(state)).created, true);
    assert.ok(readFileSync(join(state, 'anchor', 'anchor.crt')).equals(anchorBefore), 'same anchor');
    assert.ok(readFileSync(join(state, 'west', 'issuer', 'tls.crt')).equals(westBefore), 'west kept');
    assert.ok(
      readFileSync(join(state, 'west', 'issuer', 'ca.crt')).equals(anchorBefore),
      'ca.crt is the anchor',
    );
    assert.ok(existsSync(join(state, 'west', 'sa-signing', 'jwks.json')));
    for (const cluster of ['east', 'west']) assert.ok(issuerChains(state, cluster), cluster);
  });

  it('refuses to serve a half-made or unusable state, naming the file and the directory to delete', async (t) => {
    const dir = testDir(t, 'lanyard-dev-state-');
    const state = join(dir, 'state');
    await runDev(state);
    const keep = new Map(files(state).map((f) => [f, readFileSync(join(state, f))]));
    const restore = (): void => {
      for (const f of files(state)) if (!keep.has(f)) rmSync(join(state, f));
      for (const [f, bytes] of keep) {
        mkdirSync(dirname(join(state, f)), { recursive: true });
        writeFileSync(join(state, f), bytes);
      }
    };
    const other = await testPki({ now: systemClock.now() });
    const cases: { name: string; change: () => void; code: string; names: string }[] = [
      {
        name: 'issuer key without its certificate',
        change: () => {
          rmSync(join(state, 'east', 'issuer', 'tls.crt'));
        },
        code: 'ERR_FILE_NOT_FOUND',
        names: join(state, 'east', 'issuer', 'tls.crt'),
      },
      {
        name: 'anchor key without its certificate (an interrupted run of an earlier version)',
        change: () => {
          rmSync(join(state, 'anchor', 'anchor.crt'));
        },
        code: 'ERR_FILE_NOT_FOUND',
        names: join(state, 'anchor', 'anchor.crt'),
      },
      {
        name: 'issuers left without their anchor',
        change: () => {
          rmSync(join(state, 'anchor'), { recursive: true });
        },
        code: 'ERR_FILE_NOT_FOUND',
        names: join(state, 'east', 'issuer'),
      },
      {
        name: 'issuer key of another certificate',
        change: () => {
          writeFileSync(join(state, 'west', 'issuer', 'tls.key'), other.issuers.east?.keyPem ?? '');
        },
        code: 'ERR_KEY_MISMATCH',
        names: join(state, 'west', 'issuer'),
      },
      {
        name: 'issuer made under another anchor',
        change: () => {
          writeFileSync(join(state, 'west', 'issuer', 'tls.crt'), other.issuers.east?.certPem ?? '');
          writeFileSync(join(state, 'west', 'issuer', 'tls.key'), other.issuers.east?.keyPem ?? '');
        },
        code: 'ERR_CHAIN_UNTRUSTED',
        names: join(state, 'west', 'issuer'),
      },
    ];
    for (const c of cases) {
      c.change();
      const failure = await failureOf(state);
      assert.equal(failure?.code, c.code, `${c.name}: ${failure?.message}`);
      assert.ok(failure.message.includes(c.names), `${c.name}: names ${c.names}: ${failure.message}`);
      assert.ok(failure.message.includes(state), `${c.name}: names the state directory`);
      restore();
    }
    assert.equal((await runDev(state)).created, false, 'the restored state is usable');
  });
});
