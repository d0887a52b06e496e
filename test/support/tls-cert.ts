import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openssl } from './openssl-run.js';
import { tempDir } from './temp-dir.js';

export interface TestCert {
  readonly certPem: string;
  readonly keyPem: string;
}

const made = new Map<string, TestCert>();

/**
 * A throw-away self-signed P-256 certificate made by the openssl binary, valid now for a day.
 * `server`: CN=localhost with SANs DNS:localhost and IP:127.0.0.1 (a TLS server for tests);
 * `client`: CN=`cn`, usable as a client certificate and as its own trust anchor. One per kind and
 * name per process.
 */
export function testCert(kind: 'server' | 'client' = 'server', cn = 'localhost'): TestCert {
  const id = `${kind}:${cn}`;
  const cached = made.get(id);
  if (cached !== undefined) return cached;
  const { dir, cleanup } = tempDir('lanyard-tls-');
  try {
    const args = [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ];
    if (kind === 'server') args.push('-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1');
    else args.push('-addext', 'extendedKeyUsage=clientAuth');
    const r = openssl(args);
    if (!r.ok) throw new Error(`openssl req failed: ${r.stderr}`);
    const cert = {
      certPem: readFileSync(join(dir, 'cert.pem'), 'utf8'),
      keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'),
    };
    made.set(id, cert);
    return cert;
  } finally {
    cleanup();
  }
}

// The one polling helper lives in wait.ts; re-exported for the tests that import it from here.
