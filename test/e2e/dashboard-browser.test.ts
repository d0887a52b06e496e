// The dashboard page in a real browser: Debian's Chromium driven by playwright-core, against two real
// `lanyard serve` processes and a real `lanyard dashboard`. The tests read the DOM and accessible names,
// never pixels. LANYARD_DASHBOARD_SCREENSHOT=FILE also copies the screenshot there (docs/operations).
import assert from 'node:assert/strict';
import { copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { systemClock } from '../../ca/index.js';
import { createAnchorFiles, createIssuerFiles } from '../../ca/store/index.js';
import { createSigningKeyDir, DEV_TOKEN_ISSUER, SIGNING_KEY_FILES } from '../../bin/token/index.js';
import { startLanyard, type LongRunning } from '../support/cli.js';
import { defer } from '../support/cleanup.js';
import { DAY } from '../support/clock.js';
import { testDir } from '../support/temp-dir.js';
import { waitFor } from '../support/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const REFRESH_MS = 2000;

/** `lanyard serve` of one cluster on ephemeral loopback ports; resolves with its admin URL. */
async function serve(
  t: Parameters<typeof defer>[0],
  dir: string,
  cluster: string,
): Promise<{ admin: string; proc: LongRunning }> {
  const proc = startLanyard([
    'serve',
    '--issuer-dir',
    join(dir, cluster),
    '--cluster',
    cluster,
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    '--jwks-file',
    join(dir, 'sa', SIGNING_KEY_FILES.jwks),
    '--token-issuer',
    DEV_TOKEN_ISSUER,
    '--log-level',
    'error',
  ]);
  defer(t, () => proc.stop('SIGKILL'));
  const m = await proc.waitFor(/admin on (http:\/\/127\.0\.0\.1:\d+)/);
  return { admin: m[1] as string, proc };
}

/** The text of the card of `cluster` (its article, named by its heading), read again after each reload. */
async function cardText(page: Page, cluster: string): Promise<string> {
  try {
    return (
      (await page.getByRole('article', { name: cluster, exact: true }).textContent({ timeout: 1000 })) ?? ''
    );
  } catch {
    return ''; // between two loads of the page
  }
}

/** The accessible names of the timeline's rows. */
async function timelineNames(page: Page): Promise<string[]> {
  const rows = page.getByRole('group', { name: /^Expiry timeline/ }).getByRole('img');
  return Promise.all((await rows.all()).map(async (r) => (await r.getAttribute('aria-label')) ?? ''));
}

describe('the dashboard in a real browser (Chromium through playwright-core)', { timeout: 120_000 }, () => {
  let browser: Browser;
  before(async () => {
    assert.ok(statSync(CHROMIUM).isFile(), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 30_000,
    });
  });
  after(async () => {
    await browser.close();
  });

  it('shows east and west with the anchor and both issuers on the timeline, marks the issuer expiring soon, and shows a stopped cluster unreachable within one refresh', async (t) => {
    const dir = testDir(t, 'lanyard-dashboard-');
    const now = systemClock.now();
    const anchor = await createAnchorFiles(join(dir, 'anchor'), { now });
    await createIssuerFiles(join(dir, 'east'), anchor, { now, cluster: 'east' });
    // inside the 7-day warning window of issuers
    await createIssuerFiles(join(dir, 'west'), anchor, { now, cluster: 'west', lifetimeMs: 3 * DAY });
    await createSigningKeyDir(join(dir, 'sa'), { force: false, clock: systemClock });
    const [east, west] = await Promise.all([serve(t, dir, 'east'), serve(t, dir, 'west')]);
    const dashboard = startLanyard([
      'dashboard',
      '--cluster',
      `east=${east.admin}`,
      '--cluster',
      `west=${west.admin}`,
      '--listen',
      '127.0.0.1:0',
      '--refresh',
      `${REFRESH_MS / 1000}s`,
      '--timeout',
      '1s',
    ]);
    defer(t, () => dashboard.stop('SIGKILL'));
    const url = (await dashboard.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/))[1] as string;

    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    defer(t, () => page.close());
    await page.goto(url);
    await waitFor(
      async () => /ready/.test(await cardText(page, 'east')) && /ready/.test(await cardText(page, 'west')),
      'east and west shown ready',
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    assert.equal(await page.title(), 'Lanyard mesh trust');

    const names = await timelineNames(page);
    const one = (re: RegExp): string => {
      const found = names.filter((n) => re.test(n));
      assert.equal(found.length, 1, `${re} in ${names.join(' | ')}`);
      return found[0] as string;
    };
    assert.doesNotMatch(one(/^issuer of east /), /warning window|EXPIRED/);
    assert.match(one(/^issuer of west /), /within the warning window/);
    assert.doesNotMatch(one(/^anchor /), /warning window|EXPIRED/);
    // every value links to the JSON it was read from
    const statusLink = page.getByRole('article', { name: 'west', exact: true }).getByRole('link').first();
    assert.equal(await statusLink.getAttribute('href'), '/v1/clusters/west/status');
    const matrix = page.getByRole('table');
    assert.equal(await matrix.getByRole('rowheader').count(), 2);

    const shot = join(dir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 0);
    const docsCopy = process.env.LANYARD_DASHBOARD_SCREENSHOT;
    if (docsCopy !== undefined && docsCopy !== '') copyFileSync(shot, docsCopy);

    await west.proc.stop('SIGKILL');
    const stopped = performance.now();
    await waitFor(async () => /unreachable/.test(await cardText(page, 'west')), 'west shown unreachable', {
      timeoutMs: REFRESH_MS + 3000,
      intervalMs: 50,
    });
    const shownAfterMs = performance.now() - stopped;
    t.diagnostic(`west shown unreachable ${Math.round(shownAfterMs)} ms after it stopped`);
    // the reads run twice per page reload: the first reload after the stop shows it (plus a load's time)
    assert.ok(shownAfterMs < REFRESH_MS + 1500, `${shownAfterMs} ms`);
    assert.match(await cardText(page, 'east'), /ready/);
  });
});
