// `openssl speed ecdsap256`: the cost of the signature work alone, the floor no Certify can beat.
import { spawnSync } from 'node:child_process';

export interface OpensslSpeed {
  readonly version: string;
  readonly seconds: number;
  readonly signPerS: number;
  readonly verifyPerS: number;
  /** one Certify needs 1 sign (the leaf) and 2 verifies (the CSR and the token), µs of one core */
  readonly certifyFloorUs: number;
}

/** Parses the `256 bits ecdsa (nistp256) … sign/s verify/s` line of `openssl speed` output. */
export function parseOpensslSpeed(text: string): { signPerS: number; verifyPerS: number } | undefined {
  const m = /256 bits ecdsa \(nistp256\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)/.exec(text);
  if (m === null) return undefined;
  return { signPerS: Number(m[1]), verifyPerS: Number(m[2]) };
}

export function certifyFloorUs(signPerS: number, verifyPerS: number): number {
  return 1e6 / signPerS + 2e6 / verifyPerS;
}

/** Runs `openssl speed -seconds N ecdsap256` (one core); undefined when openssl is missing or fails. */
export function measureOpensslSpeed(seconds = 2): OpensslSpeed | undefined {
  const version = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (version.status !== 0) return undefined;
  const r = spawnSync('openssl', ['speed', '-seconds', String(seconds), 'ecdsap256'], {
    encoding: 'utf8',
    timeout: (seconds * 2 + 30) * 1000,
  });
  const parsed = parseOpensslSpeed(`${r.stdout}\n${r.stderr}`);
  if (parsed === undefined) return undefined;
  return {
    version: version.stdout.trim(),
    seconds,
    ...parsed,
    certifyFloorUs: certifyFloorUs(parsed.signPerS, parsed.verifyPerS),
  };
}
