import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { systemClock } from '../../ca/index.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { startTestIssuer, writeIssuerDir, type TestIssuer } from '../support/issuer.js';
import { testPki } from '../support/pki.js';
import { defer } from '../support/cleanup.js';
import { testDir } from '../support/temp-dir.js';

const sequenceOf = async (t: TestIssuer): Promise<number> => {
  const body = (await (await fetch(`${t.adminUrl}/v1/bundle.spiffe`)).json()) as { spiffe_sequence: number };
  return body.spiffe_sequence;
};

describe('spiffe_sequence of /v1/bundle.spiffe', () => {
  it("is the anchors file's mtime in seconds: equal on replicas and after a restart, higher after a change", async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const next = await testPki({ now: systemClock.now() });
    const dir = testDir(ctx, 'lanyard-spiffe-seq-');
    const ca = join(dir, 'ca.crt');
    const T1 = 1_900_000_000;
    writeIssuerDir(dir, pki, 'east');
    utimesSync(ca, T1, T1);
    const start = (): Promise<TestIssuer> =>
      startTestIssuer({ dir, authenticator: scriptedAuthenticator(), pollIntervalMs: 0 });
    const a = await start();
    let b = await start();
    defer(ctx, () => b.close());
    defer(ctx, () => a.close());
    assert.equal(await sequenceOf(a), T1);
    assert.equal(await sequenceOf(b), T1, 'a second replica reading the same file agrees');
    await b.close();
    b = await start();
    assert.equal(await sequenceOf(b), T1, 'a restart does not start over at 1');

    // The bundle changes: the sequence increases, on both replicas alike.
    writeFileSync(ca, pki.anchorsPem + next.anchorsPem);
    utimesSync(ca, T1 + 600, T1 + 600);
    await a.issuer.credentials.reload();
    await b.issuer.credentials.reload();
    assert.equal(await sequenceOf(a), T1 + 600);
    assert.equal(await sequenceOf(b), T1 + 600);

    // A changed set whose file carries an older mtime (cp -p) still increases it in this process.
    writeFileSync(ca, pki.anchorsPem);
    utimesSync(ca, T1 - 600, T1 - 600);
    await a.issuer.credentials.reload();
    assert.equal(await sequenceOf(a), T1 + 601);
  });
});
