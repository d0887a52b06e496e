// Every leaf the pods got under the B-issuer, checked by openssl as an independent verifier:
// `openssl verify -x509_strict -purpose sslclient` and `sslserver`, with the intermediates the issuer
// answered as the only untrusted certificates, against {A} alone and against {B} alone. Leaves answered
// with the cross certificate must verify against both; leaves answered after the issuers stopped
// serving it, against {B}.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { encodePem, parseCertificatesPem, type CertificateInfo } from '../../ca/index.js';
import type { MeshPod } from './story-pods.js';
import { CLUSTERS, type StoryContext } from './story-context.js';
import type { LeafChecks } from './story-summary.js';

const PURPOSES = ['sslclient', 'sslserver'] as const;

export function checkLeaves(ctx: StoryContext, pods: readonly MeshPod[]): LeafChecks {
  const { path: p } = ctx;
  const first = (file: string): CertificateInfo =>
    parseCertificatesPem(readFileSync(file, 'utf8'), file)[0] as CertificateInfo;
  const cross = first(p('cross.crt')).der;
  const issuersB = CLUSTERS.map((c) => first(p(c, 'issuer-next', 'tls.crt')).der);
  const dir = p('leaf-checks');
  mkdirSync(dir, { recursive: true });
  const stores = { A: p('anchor-a', 'anchor.crt'), B: p('anchor-b', 'anchor.crt') };
  const failures: string[] = [];
  const counts = { withCross: 0, okUnderA: 0, okUnderB: 0, withoutCross: 0, okWithoutCrossUnderB: 0 };
  let n = 0;
  /** true when every purpose verifies against `store` */
  const verify = (
    pod: string,
    serial: string,
    leaf: Buffer,
    untrusted: readonly Buffer[],
    store: 'A' | 'B',
  ) => {
    const id = String(n++);
    // at a moment the leaf was valid (the story's leaves live 15 s; most have expired by now)
    const at =
      Math.ceil(
        (parseCertificatesPem(encodePem('CERTIFICATE', leaf), 'leaf')[0]?.notBefore.getTime() ?? 0) / 1000,
      ) + 2;
    writeFileSync(`${dir}/${id}-leaf.pem`, encodePem('CERTIFICATE', leaf));
    writeFileSync(`${dir}/${id}-untrusted.pem`, untrusted.map((d) => encodePem('CERTIFICATE', d)).join(''));
    let ok = true;
    for (const purpose of PURPOSES) {
      const r = spawnSync(
        'openssl',
        [
          ...['verify', '-x509_strict', '-purpose', purpose, '-CAfile', stores[store]],
          ...['-attime', String(at), '-untrusted', `${dir}/${id}-untrusted.pem`, `${dir}/${id}-leaf.pem`],
        ],
        { encoding: 'utf8' },
      );
      if (r.status !== 0) {
        ok = false;
        failures.push(`${pod} ${serial} {${store}} ${purpose}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`);
      }
    }
    return ok;
  };
  for (const pod of pods) {
    for (const got of pod.proxy.certified) {
      const [leaf, ...untrusted] = got.chainDer;
      if (leaf === undefined || !issuersB.some((b) => untrusted[0]?.equals(b) === true)) continue;
      if (untrusted.some((d) => d.equals(cross))) {
        counts.withCross++;
        if (verify(pod.name, got.serial, leaf, untrusted, 'A')) counts.okUnderA++;
        if (verify(pod.name, got.serial, leaf, untrusted, 'B')) counts.okUnderB++;
      } else {
        counts.withoutCross++;
        if (verify(pod.name, got.serial, leaf, untrusted, 'B')) counts.okWithoutCrossUnderB++;
      }
    }
  }
  ctx.say(
    `openssl verify -x509_strict -purpose sslclient and sslserver of every leaf the pods got under the B-issuers`,
    [
      `${counts.withCross} leaves answered with the cross certificate: ${counts.okUnderA} verify against {A} alone, ${counts.okUnderB} against {B} alone`,
      `${counts.withoutCross} answered after the cross certificate was dropped: ${counts.okWithoutCrossUnderB} verify against {B}`,
      ...failures.slice(0, 5),
    ].join('\n'),
  );
  return { ...counts, failures };
}
