// Phase 1 of the rotation: anchor B, the cross certificate (B's subject and key, issued by A) and, per
// cluster, a B-issuer whose tls.crt is [issuer_B, cross]. Nothing serves any of it yet.
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { parseCertificatesPem } from '../../ca/index.js';
import { CLUSTERS, type StoryContext } from './story-context.js';

// INTERIM, until `anchor cross-sign` and `issuer create --cross-signed` (branch wt-ca) are merged:
// the same certificate made with openssl, and the cross certificate appended to the B-issuer's tls.crt.
function interimCrossSign(ctx: StoryContext): void {
  const { path: p } = ctx;
  const b = parseCertificatesPem(readFileSync(p('anchor-b', 'anchor.crt'), 'utf8'), 'anchor-b')[0];
  writeFileSync(
    p('cross.ext'),
    [
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign,cRLSign',
      `subjectKeyIdentifier=${b?.subjectKeyId?.toString('hex') ?? 'hash'}`,
      'authorityKeyIdentifier=keyid:always',
    ].join('\n'),
  );
  const r = ctx.topo.runOn(ctx.hosts['east-pod'], 'openssl', [
    ...['x509', '-in', p('anchor-b', 'anchor.crt'), '-CA', p('anchor-a', 'anchor.crt')],
    ...['-CAkey', p('anchor-a', 'anchor.key'), '-set_serial', `0x${randomBytes(12).toString('hex')}`],
    ...['-days', '365', '-clrext', '-extfile', p('cross.ext'), '-out', p('cross.crt')],
  ]);
  if (r.code !== 0) throw new Error(`openssl cross-sign: ${r.stderr}`);
  for (const c of CLUSTERS) {
    ctx.must(['issuer', 'create', '--anchor', p('anchor-b'), '--cluster', c, '--out', p(c, 'issuer-next')]);
    appendFileSync(p(c, 'issuer-next', 'tls.crt'), readFileSync(p('cross.crt')));
  }
}

export function prepareNewAnchor(ctx: StoryContext): void {
  const { must, path: p } = ctx;
  must(['anchor', 'create', '--out', p('anchor-b'), '--common-name', 'root-b.linkerd.cluster.local']);
  const hasCrossSign = ctx.lanyard(['anchor', 'cross-sign', '--help']).stdout.includes('--subject');
  if (!hasCrossSign) interimCrossSign(ctx);
  else
    must([
      ...['anchor', 'cross-sign', '--anchor', p('anchor-a'), '--subject', p('anchor-b')],
      ...['--out', p('cross.crt')],
    ]);
  for (const c of CLUSTERS) {
    if (hasCrossSign)
      must([
        ...['issuer', 'create', '--anchor', p('anchor-b'), '--cluster', c],
        ...['--cross-signed', p('cross.crt'), '--out', p(c, 'issuer-next')],
      ]);
  }
  ctx.say(
    'Phase 1: prepared anchor B, the cross certificate (B by A) and a B-issuer per cluster; nothing serves them yet',
    [
      `lanyard anchor create --out anchor-b`,
      `lanyard anchor cross-sign --anchor anchor-a --subject anchor-b --out cross.crt`,
      `lanyard issuer create --anchor anchor-b --cluster east|west --cross-signed cross.crt --out <cluster>/issuer-next   (tls.crt = [issuer_B, cross])`,
    ].join('\n'),
  );
}
