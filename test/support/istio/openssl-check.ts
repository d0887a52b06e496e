// The acceptance check for an Istio answer: `openssl verify -x509_strict` of the leaf with the middle
// elements as untrusted intermediates and the last element (all roots) as the CA file, for both
// sslclient and sslserver. Returns the failures ("PURPOSE: output"); [] means both verified.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openssl } from '../openssl-run.js';
import { tempDir } from '../temp-dir.js';

export function opensslVerifyIstioChain(
  chain: readonly string[],
  options: { atSeconds?: number } = {},
): string[] {
  if (chain.length < 2) return [`cert_chain has ${String(chain.length)} element(s)`];
  const { dir, cleanup } = tempDir('lanyard-istio-verify-');
  try {
    writeFileSync(join(dir, 'leaf.pem'), String(chain[0]));
    writeFileSync(join(dir, 'roots.pem'), String(chain[chain.length - 1]));
    const middle = chain.slice(1, -1);
    writeFileSync(join(dir, 'untrusted.pem'), middle.map((c) => (c.endsWith('\n') ? c : `${c}\n`)).join(''));
    const failures: string[] = [];
    for (const purpose of ['sslclient', 'sslserver']) {
      const args = ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', join(dir, 'roots.pem')];
      if (middle.length > 0) args.push('-untrusted', join(dir, 'untrusted.pem'));
      if (options.atSeconds !== undefined) args.push('-attime', String(options.atSeconds));
      const r = openssl([...args, join(dir, 'leaf.pem')]);
      if (!r.ok) failures.push(`${purpose}: ${r.stdout}${r.stderr}`);
    }
    return failures;
  } finally {
    cleanup();
  }
}
