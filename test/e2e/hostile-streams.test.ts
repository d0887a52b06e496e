// Issue #11, finding 1: streams that send headers only (or trickle their message) must not hold
// in-flight slots. Raw HTTP/2 on real sockets against a real `lanyard serve`, one process and two
// workers; a legitimate Certify with a one-second deadline succeeds while the attack is held.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type ClientHttp2Session } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { CERTIFY_METHOD } from '../../issuer/grpc/server.js';
import { prepareIssuerFiles, startServe, type LongRunning } from '../support/cli.js';
import { createIdentityClient } from '../support/issuer.js';
import { tempDir } from '../support/temp-dir.js';
import { buildCsr } from '../support/proxy-client.js';
import { waitFor } from '../support/wait.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const MAX_IN_FLIGHT = 16;

/** Opens `streams` Certify streams on `session` that send headers (and `partial` bytes of a message) and then nothing. */
function holdStreams(session: ClientHttp2Session, streams: number, partial?: Buffer): void {
  for (let i = 0; i < streams; i++) {
    const req = session.request({
      ':method': 'POST',
      ':path': CERTIFY_METHOD,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    req.on('error', () => undefined);
    req.on('data', () => undefined);
    if (partial !== undefined) req.write(partial);
  }
}

for (const workers of [1, 2]) {
  describe(`lanyard serve --workers ${workers} under header-only and trickling streams`, () => {
    let dir: string;
    let cleanup: () => void;
    let serve: LongRunning;
    let port: number;
    let adminUrl: string;
    const sessions: ClientHttp2Session[] = [];

    before(async () => {
      ({ dir, cleanup } = tempDir('lanyard-hostile-streams-'));
      prepareIssuerFiles(dir, ['web']);
      serve = startServe(dir, ['--workers', String(workers), '--max-in-flight', String(MAX_IN_FLIGHT)]);
      const m = await serve.waitFor(/gRPC on [^:]+:(\d+).*admin on (http:\/\/\S+)/);
      port = Number(m[1]);
      adminUrl = m[2] as string;
    });

    after(async () => {
      for (const s of sessions) s.destroy();
      await serve.stop();
      cleanup();
    });

    it('serves a legitimate Certify within a one-second deadline while four connections hold 1,024 streams', async () => {
      // a message frame that announces 100 bytes and sends 3 of them
      const trickle = Buffer.from([0, 0, 0, 0, 100, 1, 2, 3]);
      for (let c = 0; c < 4; c++) {
        const s = connect(`http://127.0.0.1:${port}`);
        s.on('error', () => undefined);
        sessions.push(s);
        holdStreams(s, 128, c % 2 === 0 ? undefined : trickle);
        holdStreams(s, 128); // beyond the server's concurrent-stream bound: queued by the client
      }
      // the attack is in place: the server holds the streams it allows (4 × 128, across the workers)
      const awaitingNow = async (): Promise<number> =>
        Number(
          /^lanyard_requests_awaiting_message\{api="Certify"\} (\d+)/m.exec(
            await (await fetch(`${adminUrl}/metrics`)).text(),
          )?.[1] ?? 0,
        );
      await waitFor(async () => (await awaitingNow()) >= 512, 'the held streams to reach the server', {
        timeoutMs: 10_000,
        intervalMs: 25,
      });
      assert.ok((await awaitingNow()) >= 512, 'the held streams reached the server');
      const client = createIdentityClient(`127.0.0.1:${port}`);
      try {
        for (let i = 0; i < 3; i++) {
          const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
          const res = await client.certify(
            {
              identity: ID,
              token: readFileSync(join(dir, 'web.token')),
              certificate_signing_request: buildCsr(key, ID),
            },
            { deadlineMs: 1000 },
          );
          assert.ok(res.leaf_certificate.length > 0);
        }
      } finally {
        client.close();
      }
      const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
      const awaiting = Number(
        /^lanyard_requests_awaiting_message\{api="Certify"\} (\d+)/m.exec(metrics)?.[1],
      );
      assert.ok(awaiting >= 128, `the held streams are counted as waiting for their request (${awaiting})`);
      assert.match(metrics, /^lanyard_requests_in_flight\{api="Certify"\} 0$/m);
    });

    it('ends the held streams once their request has not arrived in time', async () => {
      // the server's limit is 5 s from the headers; the streams were opened before this test
      await waitFor(
        async () => {
          const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
          const timedOut = Number(
            /^lanyard_requests_total\{api="Certify",result="DEADLINE_EXCEEDED"\} (\d+)/m.exec(metrics)?.[1] ??
              0,
          );
          return timedOut >= 512;
        },
        'the held streams to be ended',
        { timeoutMs: 30_000, intervalMs: 200 },
      );
    });
  });
}
