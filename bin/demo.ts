// `npm run demo`: the flat-network story for a person, step by step.
import { runFlatNetworkStory, type Outcome } from './demo/index.js';
import { guardProcess } from './demo/index.js';

// The story removes its namespaces, processes and files itself on SIGINT, SIGTERM and SIGHUP (then
// exits 128 + the signal number), when this process's parent goes away, and at exit (topology.ts
// registerCleanup, installed by guardProcess() below). This listener, registered first, only says so.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    try {
      process.stdout.write(`\n${sig}: removing the demo's namespaces, processes and files\n`);
    } catch {
      // stdout gone with the terminal
    }
  });
}
guardProcess();
// A closed stdout (the reader went away) must not crash the demo before it has cleaned up.
process.stdout.on('error', () => undefined);

const refused = (o: Outcome): string => (o.ok ? 'ACCEPTED' : (o.serverCode ?? o.code ?? '?'));

let step = 0;
const summary = await runFlatNetworkStory({
  say: (title, detail) => {
    process.stdout.write(`\n[${++step}] ${title}\n`);
    if (detail !== undefined && detail !== '') process.stdout.write(`${detail.replace(/^/gm, '    ')}\n`);
  },
});

const pods = Object.entries(summary.identity.pods);
// every pod certificate came through the proxy-faithful client over TLS with no ALPN, none failed,
// and each issuer counted at least that many no-ALPN connections and no h2 one
const viaProxyTls =
  pods.length === 2 &&
  pods.every(
    ([c, x]) =>
      x.certified > 0 &&
      x.failed === 0 &&
      x.alpn.length === 1 &&
      x.alpn[0] === false &&
      (summary.identity.tlsConnections[c]?.no_alpn ?? 0) >= x.certified &&
      (summary.identity.tlsConnections[c]?.h2 ?? 0) === 0,
  );
const ok =
  viaProxyTls &&
  !summary.identity.staleProxy.ok &&
  Object.values(summary.crossCluster.openssl).every(Boolean) &&
  Object.values(summary.crossCluster.node).every(Boolean) &&
  !summary.negatives.untrustedAnchor.ok &&
  !summary.negatives.wrongIdentity.ok &&
  !summary.negatives.expired.ok &&
  !summary.negatives.opensslUntrustedClient.ok &&
  summary.rotation.failed === 0 &&
  summary.finalCheckExit === 0;
process.stdout.write(
  [
    '',
    '── Summary ──',
    `mode:                     ${summary.mode}`,
    `pods' certificates:       ${pods.map(([c, x]) => `${c} ${x.certified} (${x.failed} failed, ${x.restarts} proxy restarts)`).join(', ')}, through the proxy-faithful client over TLS 1.3 with ALPN ${viaProxyTls ? 'none' : 'NOT none'}; issuers' no-ALPN connections ${pods.map(([c]) => `${c} ${summary.identity.tlsConnections[c]?.no_alpn ?? 0}`).join(', ')}`,
    `proxy with old anchor only: ${summary.identity.staleProxy.ok ? 'ACCEPTED' : `refused after phase 2 (${summary.identity.staleProxy.code ?? summary.identity.staleProxy.kind ?? '?'})`}`,
    `cross-cluster mTLS:       openssl ${JSON.stringify(summary.crossCluster.openssl)}, node ${JSON.stringify(summary.crossCluster.node)}`,
    `refused as they should:   untrusted anchor ${refused(summary.negatives.untrustedAnchor)}, wrong identity ${refused(summary.negatives.wrongIdentity)}, expired ${refused(summary.negatives.expired)}, openssl untrusted client ${summary.negatives.opensslUntrustedClient.ok ? 'ACCEPTED' : `verify error ${String(summary.negatives.opensslUntrustedClient.serverVerifyError ?? '?')}`}`,
    `rotation handshakes:      ${summary.rotation.handshakes} made, ${summary.rotation.failed} failed, ${(summary.rotation.durationMs / 1000).toFixed(1)} s`,
    `total time:               ${(summary.durationMs / 1000).toFixed(1)} s`,
    ok ? 'All as expected.' : 'SOMETHING WENT WRONG (see above).',
    '',
  ].join('\n'),
);
process.exitCode = ok ? 0 : 1;
