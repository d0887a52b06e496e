// `npm run demo`: the flat-network story for a person, step by step.
import { runFlatNetworkStory } from './demo/story.js';

let teardown: (() => void) | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stdout.write(`\n${sig}: removing the demo's namespaces, processes and files\n`);
    teardown?.();
    process.exit(130);
  });
}

let step = 0;
const summary = await runFlatNetworkStory({
  say: (title, detail) => {
    process.stdout.write(`\n[${++step}] ${title}\n`);
    if (detail !== undefined && detail !== '') process.stdout.write(`${detail.replace(/^/gm, '    ')}\n`);
  },
  onTopology: (fn) => {
    teardown = fn;
  },
});

const ok =
  Object.values(summary.crossCluster.openssl).every(Boolean) &&
  Object.values(summary.crossCluster.node).every(Boolean) &&
  Object.values(summary.negatives).every(Boolean) &&
  summary.rotation.failed === 0 &&
  summary.finalCheckExit === 0;
process.stdout.write(
  [
    '',
    '── Summary ──',
    `mode:                     ${summary.mode}`,
    `cross-cluster mTLS:       openssl ${JSON.stringify(summary.crossCluster.openssl)}, node ${JSON.stringify(summary.crossCluster.node)}`,
    `refused as they should:   untrusted anchor ${String(summary.negatives.untrustedAnchorRefused)}, wrong identity ${String(summary.negatives.wrongIdentityRefused)}, expired ${String(summary.negatives.expiredRefused)}`,
    `rotation handshakes:      ${summary.rotation.handshakes} made, ${summary.rotation.failed} failed, ${(summary.rotation.durationMs / 1000).toFixed(1)} s`,
    `total time:               ${(summary.durationMs / 1000).toFixed(1)} s`,
    ok ? 'All as expected.' : 'SOMETHING WENT WRONG (see above).',
    '',
  ].join('\n'),
);
process.exitCode = ok ? 0 : 1;
