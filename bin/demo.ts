// `npm run demo`: the flat-network story for a person, step by step.
import { runFlatNetworkStory, type Outcome } from './demo/index.js';
import { coverageGaps, guardProcess } from './demo/index.js';

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
const byCluster = (c: string): number =>
  pods.filter(([, x]) => x.cluster === c).reduce((n, [, x]) => n + x.certified, 0);
// every pod certificate came through the proxy-faithful client over TLS with no ALPN, none failed,
// and each issuer counted at least that many no-ALPN connections and no h2 one
const viaProxyTls =
  pods.length === 6 &&
  pods.every(([, x]) => x.certified > 0 && x.failed === 0 && x.alpn.length === 1 && x.alpn[0] === false) &&
  ['east', 'west'].every(
    (c) =>
      (summary.identity.tlsConnections[c]?.no_alpn ?? 0) >= byCluster(c) &&
      (summary.identity.tlsConnections[c]?.h2 ?? 0) === 0,
  );
const { rotation: rot, leafChecks: leaves } = summary;
const gaps = coverageGaps(rot);
const restarts = pods.reduce((n, [, x]) => n + x.restarts, 0);
const leavesOk =
  leaves.withCross > 0 &&
  leaves.okUnderA === leaves.withCross &&
  leaves.okUnderB === leaves.withCross &&
  leaves.okWithoutCrossUnderB === leaves.withoutCross;
const ok =
  viaProxyTls &&
  summary.identity.staleProxy.ok &&
  Object.values(summary.crossCluster.openssl).every(Boolean) &&
  Object.values(summary.crossCluster.node).every(Boolean) &&
  !summary.negatives.untrustedAnchor.ok &&
  !summary.negatives.wrongIdentity.ok &&
  !summary.negatives.expired.ok &&
  !summary.negatives.opensslUntrustedClient.ok &&
  rot.failed === 0 &&
  rot.listenerRefusals === 0 &&
  gaps.length === 0 &&
  restarts === 0 &&
  leavesOk &&
  summary.finalCheckExit === 0;
const pairCount = Object.keys(rot.pairs).length;
process.stdout.write(
  [
    '',
    '── Summary ──',
    `mode:                     ${summary.mode}`,
    `pods:                     ${pods.length} (${pods.map(([n, x]) => `${n} trusting ${x.trusts.map((t) => t.replace(/\..*$/, '')).join('+')}`).join(', ')}); ${restarts} restarted`,
    `pods' certificates:       ${pods.map(([n, x]) => `${n} ${x.certified} (${x.renewals.length} renewals by valid_until, ${x.failed} failed)`).join(', ')}; through the proxy-faithful client over TLS 1.3 with ALPN ${viaProxyTls ? 'none' : 'NOT none'}; issuers' no-ALPN connections ${['east', 'west'].map((c) => `${c} ${summary.identity.tlsConnections[c]?.no_alpn ?? 0}`).join(', ')}`,
    `proxy with old anchor only, after the switch: ${summary.identity.staleProxy.ok ? 'ACCEPTED (through the cross certificate)' : `REFUSED (${summary.identity.staleProxy.code ?? summary.identity.staleProxy.kind ?? '?'})`}`,
    `cross-cluster mTLS:       openssl ${JSON.stringify(summary.crossCluster.openssl)}, node ${JSON.stringify(summary.crossCluster.node)}`,
    `refused as they should:   untrusted anchor ${refused(summary.negatives.untrustedAnchor)}, wrong identity ${refused(summary.negatives.wrongIdentity)}, expired ${refused(summary.negatives.expired)}, openssl untrusted client ${summary.negatives.opensslUntrustedClient.ok ? 'ACCEPTED' : `verify error ${String(summary.negatives.opensslUntrustedClient.serverVerifyError ?? '?')}`}`,
    `rotation handshakes:      ${rot.handshakes} made between ${pairCount} pod pairs × direction, ${rot.failed} failed, ${rot.viaCross} by pods trusting only A through the cross certificate, ${rot.listenerRefusals} refused by a listener, ${(rot.durationMs / 1000).toFixed(1)} s; pairs without a handshake in a phase they were both running: ${gaps.length === 0 ? 'none' : gaps.join(', ')}`,
    `phases:                   ${rot.phases.map((x) => `${x.phase} ${(x.durationMs / 1000).toFixed(1)} s ${x.handshakes} hs`).join(' | ')}; phase-4 gate: ${JSON.stringify(rot.gate)}; phase-6 gate: ${JSON.stringify(rot.cleanupGate)}`,
    `openssl -x509_strict:     ${leaves.withCross} leaves with the cross certificate, ${leaves.okUnderA} verify under {A} alone and ${leaves.okUnderB} under {B} alone (sslclient and sslserver); ${leaves.withoutCross} without it, ${leaves.okWithoutCrossUnderB} verify under {B}`,
    `total time:               ${(summary.durationMs / 1000).toFixed(1)} s`,
    ok ? 'All as expected.' : 'SOMETHING WENT WRONG (see above).',
    '',
  ].join('\n'),
);
process.exitCode = ok ? 0 : 1;
