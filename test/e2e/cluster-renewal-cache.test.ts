// `lanyard serve --workers 2`: a renewal that lands on the other worker finds the CSR and the token
// in its renewal caches (shared through the primary), as the summed metrics show.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { buildCsr } from '../../ca/index.js';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { startCluster, type ServeCluster } from '../support/cluster.js';
import { createIdentityClient } from '../support/issuer.js';
import { waitFor } from '../support/wait.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

describe('lanyard serve --workers 2: renewal caches shared between the workers', () => {
  let cluster: ServeCluster;

  before(async () => {
    cluster = await startCluster('lanyard-cluster-cache-');
  });
  after(() => cluster.stop());

  const metric = async (series: string): Promise<number> => {
    const text = await (await fetch(`${cluster.admin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return Number(line?.slice(series.length + 1) ?? NaN);
  };

  it('answers renewals on either worker from the cache after one verification', async () => {
    const token = Buffer.from(readFileSync(join(cluster.dir, 'web.token'), 'utf8'));
    const csr = buildCsr(createKeyObjectSigner(await generateKey('p256')), { dnsNames: [ID] });
    // Separate connections (distinct channel options) are spread over the workers.
    const certifyOn = async (connection: number): Promise<void> => {
      const client = createIdentityClient(
        `127.0.0.1:${cluster.grpcPort}`,
        grpc.credentials.createInsecure(),
        {
          'lanyard.test-connection': connection,
        },
      );
      try {
        await client.certify({ identity: ID, token, certificate_signing_request: csr });
      } finally {
        client.close();
      }
    };
    await certifyOn(1);
    // both workers hold the entries (the gauges are summed over the workers)
    let held = [0, 0];
    await waitFor(
      async () => {
        held = [
          await metric('lanyard_renewal_cache_entries{cache="csr"}'),
          await metric('lanyard_renewal_cache_entries{cache="token"}'),
        ];
        return held[0] === 2 && held[1] === 2;
      },
      'the entries on both workers',
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    for (let c = 2; c <= 7; c++) await certifyOn(c);
    const workers = new Set(
      cluster.serve
        .stderr()
        .split('\n')
        .filter((l) => l.includes('"rpc":"Certify"'))
        .map((l) => (JSON.parse(l) as { worker?: number }).worker),
    );
    assert.deepEqual([...workers].sort(), [1, 2], 'both workers served calls');
    const lookups = async (cache: string): Promise<{ hit: number; miss: number }> => ({
      hit: await metric(`lanyard_renewal_cache_lookups_total{cache="${cache}",result="hit"}`),
      miss: await metric(`lanyard_renewal_cache_lookups_total{cache="${cache}",result="miss"}`),
    });
    assert.deepEqual(await lookups('csr'), { hit: 6, miss: 1 });
    assert.deepEqual(await lookups('token'), { hit: 6, miss: 1 });
    assert.ok((await metric('lanyard_renewal_cache_bytes{cache="csr"}')) > 0);
  });
});
