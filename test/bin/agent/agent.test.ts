import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKeyObjectSigner, generateKey } from '../../../ca/keys/index.js';
import { encodePem, parseCertificatesPem, systemClock, LanyardError } from '../../../ca/index.js';
import { checkBundleUrl, createCertifyClient, renewalDelayMs } from '../../../bin/agent/agent.js';
import { createDirectoryCredentialSource } from '../../../issuer/credentials.js';
import { scriptedAuthenticator } from '../../support/authn.js';
import { FakeClock, HOUR } from '../../support/clock.js';
import { startTestIssuer } from '../../support/issuer.js';
import { writeAtomicVolume } from '../../support/k8s-volume.js';
import { tempDir } from '../../support/temp-dir.js';
import { runLanyard } from '../../support/cli-inproc.js';
import { createTestCertificate, testPki } from '../../support/pki.js';
import { startHttp, trickle } from '../../support/http-server.js';
import { waitFor } from '../../support/wait.js';
import { defer } from '../../support/cleanup.js';
import { testDir } from '../../support/temp-dir.js';
import { certifyArgs, clientOptions, writeClientFiles } from '../../support/certify-client.js';

const silent = pino({ level: 'silent' });

describe('certify client', () => {
  it('renews at 70 % of the remaining lifetime, bounded to 10 s – 24 h', () => {
    const now = new Date(0);
    assert.equal(renewalDelayMs(now, new Date(10 * HOUR)), 7 * HOUR);
    assert.equal(renewalDelayMs(now, new Date(1000)), 10_000);
    assert.equal(renewalDelayMs(now, new Date(100 * HOUR)), 24 * HOUR);
  });

  it('refuses a chain that does not verify against its trust anchors and writes no certificate', async (ctx) => {
    const now = systemClock.now();
    const pki = await testPki({ now });
    const stranger = await testPki({ now });
    const t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator() });
    const dir = testDir(ctx, 'lanyard-client-');
    defer(ctx, () => t.close());
    writeClientFiles(dir, stranger.anchorsPem);
    const client = await createCertifyClient(clientOptions(dir, t.target));
    await assert.rejects(
      client.certifyOnce(),
      (err: unknown) => err instanceof LanyardError && err.code === 'ERR_CHAIN_UNTRUSTED',
    );
    assert.equal(existsSync(join(dir, 'out', 'tls.crt')), false);
    client.close();
  });

  it('keeps running until aborted, retrying with backoff while the issuer refuses', async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator() });
    const dir = testDir(ctx, 'lanyard-client-');
    defer(ctx, () => t.close());
    writeClientFiles(dir, pki.anchorsPem, 'forged\n');
    const client = await createCertifyClient(clientOptions(dir, t.target));
    const ac = new AbortController();
    const running = client.run(ac.signal);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(existsSync(join(dir, 'out', 'tls.crt')), false, 'nothing written while refused');
    // The token file is re-read before each call: fixing it lets the next retry succeed.
    writeFileSync(join(dir, 'token'), 'sa:default:web\n');
    await waitFor(() => existsSync(join(dir, 'out', 'tls.crt')), 'a certificate after the token was fixed', {
      intervalMs: 50,
    });
    ac.abort();
    await running;
    client.close();
  });
});

describe('directory credential source', () => {
  it('sees a Kubernetes ..data symlink swap through the directory watch, without polling', async (ctx) => {
    const clock = new FakeClock(systemClock.now());
    const pki = await testPki({ now: clock.now(), clusters: ['a', 'b'] });
    const dir = testDir(ctx, 'lanyard-watch-');
    const files = (c: string): Record<string, string> => ({
      'tls.crt': pki.issuers[c]?.certPem as string,
      'tls.key': pki.issuers[c]?.keyPem as string,
      'ca.crt': pki.anchorsPem,
    });
    writeAtomicVolume(dir, files('a'));
    const source = await createDirectoryCredentialSource({ dir, clock, logger: silent, pollIntervalMs: 0 });
    defer(ctx, () => source.close());
    assert.equal(source.current()?.certificate.serialHex, pki.issuers.a?.cert.serialHex);
    const changed = new Promise<string>((resolve) =>
      source.onChange((c) => {
        resolve(c.certificate.serialHex);
      }),
    );
    // The source's watch and timers do not hold the process open (a server's sockets do); this test must.
    const keepAlive = setInterval(() => undefined, 1000);
    writeAtomicVolume(dir, files('b'));
    defer(ctx, () => {
      clearInterval(keepAlive);
    });
    assert.equal(await changed, pki.issuers.b?.cert.serialHex);
  });
});

describe('certify client with --bundle-url', () => {
  it("refreshes ca.crt from the issuer's bundle on each renewal, and refuses a bundle with no anchor in common", async (ctx) => {
    const now = systemClock.now();
    const pki = await testPki({ now });
    const next = await testPki({ now });
    const stranger = await testPki({ now });
    const t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator() });
    const dir = testDir(ctx, 'lanyard-client-bundle-');
    defer(ctx, () => t.close());
    writeClientFiles(dir, pki.anchorsPem);
    const client = await createCertifyClient({
      ...clientOptions(dir, t.target),
      bundleUrl: `${t.adminUrl}/v1/bundle`,
    });
    await client.certifyOnce();
    assert.equal(readFileSync(join(dir, 'out', 'ca.crt'), 'utf8'), pki.anchorsPem);
    // The operator adds an anchor to the issuer's bundle: the next renewal picks it up.
    writeFileSync(join(t.dir, 'ca.crt'), pki.anchorsPem + next.anchorsPem);
    await t.issuer.credentials.reload();
    await client.certifyOnce();
    const anchors = parseCertificatesPem(readFileSync(join(dir, 'out', 'ca.crt'), 'utf8'), 'ca.crt');
    assert.equal(anchors.length, 2);
    // A bundle sharing nothing with what the workload trusts is refused.
    writeFileSync(join(dir, 'anchors.pem'), stranger.anchorsPem);
    rmSync(join(dir, 'out', 'ca.crt'));
    await assert.rejects(
      client.certifyOnce(),
      (err: unknown) => err instanceof LanyardError && err.code === 'ERR_CHAIN_UNTRUSTED',
    );
    client.close();
  });
});

describe('certify client with --bundle-url: the --trust-anchors file is authoritative', () => {
  /** The set of anchors in a PEM file, as sorted base64 DER. */
  const anchorSet = (path: string): string[] =>
    parseCertificatesPem(readFileSync(path, 'utf8'), path)
      .map((c) => c.der.toString('base64'))
      .sort();
  const setOf = (...pems: string[]): string[] =>
    pems
      .flatMap((p) => parseCertificatesPem(p, 'test'))
      .map((c) => c.der.toString('base64'))
      .sort();
  const untrusted = (err: unknown): boolean =>
    err instanceof LanyardError && err.code === 'ERR_CHAIN_UNTRUSTED';

  /** An issuer under anchor A, another anchor B, and a bundle endpoint that answers `body`, or 503 when null. */
  async function setup(): Promise<{
    a: string;
    b: string;
    serve: (body: string | null) => void;
    client: () => Promise<Awaited<ReturnType<typeof createCertifyClient>>>;
    anchorsFile: string;
    caFile: string;
    close: () => Promise<void>;
  }> {
    const now = systemClock.now();
    const pki = await testPki({ now });
    const other = await testPki({ now });
    const t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator() });
    const http = await startHttp();
    let body: string | null = null;
    http.route('/v1/bundle', (_req, res) => {
      if (body === null) res.writeHead(503).end();
      else res.end(body);
    });
    const { dir, cleanup } = tempDir('lanyard-client-authoritative-');
    writeFileSync(join(dir, 'token'), 'sa:default:web\n');
    const clients: { close(): void }[] = [];
    return {
      a: pki.anchorsPem,
      b: other.anchorsPem,
      serve: (b) => {
        body = b;
      },
      anchorsFile: join(dir, 'anchors.pem'),
      caFile: join(dir, 'out', 'ca.crt'),
      client: async () => {
        const c = await createCertifyClient({
          ...clientOptions(dir, t.target),
          bundleUrl: `${http.origin}/v1/bundle`,
        });
        clients.push(c);
        return c;
      },
      close: async () => {
        for (const c of clients) c.close();
        await http.close();
        await t.close();
        cleanup();
      },
    };
  }

  it('an anchor removed from --trust-anchors is no longer trusted when the bundle cannot be fetched (not kept from OUT/ca.crt)', async (ctx) => {
    const s = await setup();
    defer(ctx, () => s.close());
    writeFileSync(s.anchorsFile, s.a + s.b);
    s.serve(s.a + s.b);
    const client = await s.client();
    await client.certifyOnce();
    assert.deepEqual(anchorSet(s.caFile), setOf(s.a, s.b));
    // The operator removes A, under which the issuer signs; the bundle endpoint is down.
    writeFileSync(s.anchorsFile, s.b);
    s.serve(null);
    await assert.rejects(client.certifyOnce(), untrusted);
  });

  it('an anchor added to --trust-anchors is trusted at once, whether the bundle is down or does not list it', async (ctx) => {
    const s = await setup();
    defer(ctx, () => s.close());
    writeFileSync(s.anchorsFile, s.a);
    s.serve(s.a);
    const client = await s.client();
    await client.certifyOnce();
    assert.deepEqual(anchorSet(s.caFile), setOf(s.a));
    writeFileSync(s.anchorsFile, s.a + s.b);
    s.serve(null);
    await client.certifyOnce();
    assert.deepEqual(anchorSet(s.caFile), setOf(s.a, s.b), 'bundle down');
    s.serve(s.a);
    await client.certifyOnce();
    assert.deepEqual(anchorSet(s.caFile), setOf(s.a, s.b), 'bundle without B');
    // and the bundle still adds what it has beyond the file
    writeFileSync(s.anchorsFile, s.a);
    s.serve(s.a + s.b);
    await client.certifyOnce();
    assert.deepEqual(anchorSet(s.caFile), setOf(s.a, s.b), 'bundle with B, file without');
  });

  it('a bundle that shares an anchor only with the old OUT/ca.crt, not with --trust-anchors, is refused', async (ctx) => {
    const s = await setup();
    defer(ctx, () => s.close());
    writeFileSync(s.anchorsFile, s.a);
    s.serve(s.a);
    const client = await s.client();
    await client.certifyOnce();
    // The operator replaces A by B in the file; the bundle still offers A.
    writeFileSync(s.anchorsFile, s.b);
    await assert.rejects(client.certifyOnce(), untrusted);
    assert.deepEqual(anchorSet(s.caFile), setOf(s.a), 'ca.crt is left as it was');
  });
});

describe('directory credential source and the clock', () => {
  it('accepts, at a later poll, files that were rejected only because they were not valid yet', async (ctx) => {
    const clock = new FakeClock(systemClock.now());
    const pki = await testPki({ now: new Date(clock.now().getTime() + HOUR) });
    const dir = testDir(ctx, 'lanyard-future-');
    writeAtomicVolume(dir, {
      'tls.crt': pki.issuers.east?.certPem as string,
      'tls.key': pki.issuers.east?.keyPem as string,
      'ca.crt': pki.anchorsPem,
    });
    const source = await createDirectoryCredentialSource({ dir, clock, logger: silent, pollIntervalMs: 0 });
    defer(ctx, () => source.close());
    assert.equal(source.current(), undefined, 'not valid yet: rejected');
    clock.advance(2 * HOUR);
    const outcome = await source.reload();
    assert.equal(outcome.result, 'loaded');
    assert.equal(source.current()?.certificate.serialHex, pki.issuers.east?.cert.serialHex);
  });
});

describe('certify client: where a --bundle-url may come from, and what it may hold', () => {
  /** A loopback HTTP server answering every request with `body`. */
  async function serveText(body: () => string): Promise<{ url: string; close: () => Promise<void> }> {
    const server = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(body());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/v1/bundle`,
      close: () =>
        new Promise((resolve) => {
          server.close(() => {
            resolve();
          });
        }),
    };
  }

  it('refuses a fetched bundle holding a certificate that is not a CA, and keeps ca.crt as it was', async (ctx) => {
    const now = systemClock.now();
    const pki = await testPki({ now });
    const t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator() });
    const notCa = await createTestCertificate({
      issuer: pki.anchor,
      subjectSigner: createKeyObjectSigner(await generateKey('p256')),
      commonName: 'not-a-ca',
      notBefore: now,
      notAfter: new Date(now.getTime() + HOUR),
      isCa: false,
    });
    let body = pki.anchorsPem;
    const bundle = await serveText(() => body);
    const dir = testDir(ctx, 'lanyard-client-strict-');
    defer(ctx, () => t.close());
    defer(ctx, () => bundle.close());
    writeClientFiles(dir, pki.anchorsPem);
    const client = await createCertifyClient({
      ...clientOptions(dir, t.target),
      bundleUrl: bundle.url,
    });
    await client.certifyOnce();
    const before = readFileSync(join(dir, 'out', 'ca.crt'), 'utf8');
    body = pki.anchorsPem + encodePem('CERTIFICATE', notCa.der);
    await assert.rejects(
      client.certifyOnce(),
      (err: unknown) => err instanceof LanyardError && err.code === 'ERR_NOT_CA',
    );
    assert.equal(readFileSync(join(dir, 'out', 'ca.crt'), 'utf8'), before);
    client.close();
  });

  it('gives up on a bundle that trickles in past --timeout, or redirects to another host, and certifies with --trust-anchors', async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator() });
    const web = await startHttp();
    const rogue = await startHttp();
    rogue.route('/v1/bundle', (_req, res) => res.end(pki.anchorsPem));
    web.route('/slow', trickle);
    web.route('/away', (_req, res) => res.writeHead(302, { location: `${rogue.origin}/v1/bundle` }).end());
    const dir = testDir(ctx, 'lanyard-client-bounded-');
    defer(ctx, () => t.close());
    defer(ctx, () => rogue.close());
    defer(ctx, () => web.close());
    writeClientFiles(dir, pki.anchorsPem);
    for (const path of ['/slow', '/away']) {
      const client = await createCertifyClient({
        ...clientOptions(dir, t.target),
        outDir: join(dir, `out${path}`),
        bundleUrl: `${web.origin}${path}`,
        timeoutMs: 300,
      });
      try {
        let timer: NodeJS.Timeout | undefined;
        const files = await Promise.race([
          client.certifyOnce(),
          new Promise<never>((_resolve, reject) => {
            timer = setTimeout(() => {
              reject(new Error(`${path}: the bundle fetch was not bounded by --timeout`));
            }, 3000);
          }),
        ]).finally(() => {
          clearTimeout(timer);
        });
        assert.equal(readFileSync(files.caPath, 'utf8'), pki.anchorsPem, path);
      } finally {
        client.close();
      }
    }
    assert.equal(rogue.hits.size, 0, 'the other host was never asked');
  });

  it('accepts http only to a loopback address unless opted in, and never a scheme other than http(s)', () => {
    for (const ok of [
      'http://127.0.0.1:9990/v1/bundle',
      'http://127.1.2.3/v1/bundle',
      'http://localhost:9990/v1/bundle',
      'http://[::1]:9990/v1/bundle',
      'https://10.0.0.1:9990/v1/bundle',
    ])
      assert.doesNotThrow(() => checkBundleUrl(ok, false), ok);
    for (const bad of [
      'http://10.0.0.1:9990/v1/bundle',
      'http://127.0.0.1.example.com/v1/bundle',
      'ftp://127.0.0.1/b',
      'not a url',
    ])
      assert.throws(() => checkBundleUrl(bad, false), hasUsageCode, bad);
    assert.doesNotThrow(() => checkBundleUrl('http://10.0.0.1:9990/v1/bundle', true));
    assert.throws(() => checkBundleUrl('ftp://10.0.0.1/b', true), hasUsageCode);
  });

  it('lanyard certify refuses a plain-http non-loopback --bundle-url at startup with a usage error (exit 2)', async (ctx) => {
    const dir = testDir(ctx, 'lanyard-client-usage-');
    writeFileSync(join(dir, 'token'), 'sa:default:web\n');
    const pki = await testPki({ now: systemClock.now() });
    writeFileSync(join(dir, 'anchors.pem'), pki.anchorsPem);
    const args = [
      ...certifyArgs(dir, '127.0.0.1:1'),
      '--bundle-url',
      'http://192.0.2.1:9990/v1/bundle',
      '--once',
    ];
    const r = await runLanyard(args);
    assert.equal(r.code, 2, r.err);
    assert.equal(existsSync(join(dir, 'out', 'tls.key')), false, 'refused before anything was made');
  });
});

const hasUsageCode = (err: unknown): boolean => err instanceof LanyardError && err.code === 'ERR_USAGE';
