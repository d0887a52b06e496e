// Phase 1 of the rotation: anchor B, the cross certificate (B's subject and key, issued by A) and, per
// cluster, a B-issuer whose tls.crt is [issuer_B, cross]. Nothing serves any of it yet.
import { CLUSTERS, type StoryContext } from './story-context.js';

export function prepareNewAnchor(ctx: StoryContext): void {
  const { must, path: p } = ctx;
  must(['anchor', 'create', '--out', p('anchor-b'), '--common-name', 'root-b.linkerd.cluster.local']);
  must([
    ...['anchor', 'cross-sign', '--anchor', p('anchor-a'), '--subject', p('anchor-b')],
    ...['--out', p('cross.crt')],
  ]);
  for (const c of CLUSTERS) {
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
