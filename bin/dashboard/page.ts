// The dashboard page, rendered on the server from the mesh view: self-contained (inline style and SVG,
// no script, no font or request elsewhere), reloading itself every refresh. Every value links to the
// JSON it was read from.
import { formatDuration } from '../../ca/index.js';
import type { ClusterView, MeshView } from '../../trust-bundles/index.js';
import { esc, metricsHref, statusHref } from './html.js';
import { timelineSvg } from './timeline-svg.js';

const STYLE = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d2230}
header{background:#1d2230;color:#fff;padding:12px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9cedb}header a{color:#9cc3ff}
main{padding:12px 24px}section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:8px 16px;margin:12px 0}
h2{font-size:16px;margin:8px 0}.cards{display:flex;flex-wrap:wrap;gap:12px}
article{border:1px solid #dde1e8;border-radius:6px;padding:8px 12px;min-width:260px}
article h3{margin:0 0 4px;font-size:15px}article.state-unreachable,article.state-broken{border-color:#c62828;background:#fdecea}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600}
.ok{background:#e3f4e8;color:#1b5e20}.bad{background:#c62828;color:#fff}.warn{background:#fff3e0;color:#8a4b00}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:6px 0}dt{color:#5a6275}dd{margin:0}
a{color:#1f5fbf}table{border-collapse:collapse}caption{text-align:left;caption-side:bottom;padding-top:4px;color:#5a6275}th,td{border:1px solid #dde1e8;padding:4px 8px;text-align:left}
td.mismatch{background:#fdecea;color:#8e1b1b;font-weight:600}td.trusted{background:#eef7f0}
svg.timeline text{font-size:12px;fill:#1d2230;stroke:none}svg.timeline line.tick{stroke:#e4e7ed}svg.timeline text.tick{fill:#8a90a0}
svg.timeline line.today{stroke:#1f5fbf;stroke-width:2}svg.timeline text.today{fill:#1f5fbf;font-weight:600}svg.timeline .bar{stroke:#b8c0cf;stroke-width:2}
svg.timeline .anchor circle{fill:#6a1b9a}svg.timeline .issuer circle{fill:#1565c0}
svg.timeline .intermediate circle{fill:#00838f}svg.timeline .leaf-horizon circle{fill:#7cb342}
svg.timeline .renewal-hint circle{fill:#f9a825}svg.timeline .warning circle{fill:#ef6c00}
svg.timeline .warning text.label{fill:#b34700;font-weight:600}svg.timeline .expired circle{fill:#c62828}
svg.timeline .expired text.label{fill:#c62828;font-weight:700}
ul.findings li.error{color:#8e1b1b}ul.findings li.warning{color:#8a4b00}
`;

export function renderPage(v: MeshView, o: { refreshMs: number }): string {
  const now = new Date(v.now);
  const seconds = Math.max(1, Math.round(o.refreshMs / 1000));
  const down = v.clusters.filter((c) => c.state === 'unreachable' || c.state === 'broken');
  const summary =
    down.length > 0
      ? `${down.length} of ${v.clusters.length} clusters cannot be read: ${down.map((c) => c.name).join(', ')}`
      : `${v.clusters.length} clusters, ${v.anchors.length} trust anchor${v.anchors.length === 1 ? '' : 's'}, ${v.findings.filter((f) => f.severity === 'error').length} trust errors, ${v.findings.filter((f) => f.severity === 'warning').length} warnings`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${seconds}">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Lanyard mesh trust</title><style>${STYLE}</style></head>
<body><header><h1>Lanyard mesh trust</h1>
<p>Read at <time datetime="${esc(v.now)}">${esc(v.now)}</time>; this page reloads every ${seconds} s; <a href="/v1/mesh">the whole view as JSON</a></p>
<p role="status" aria-label="summary">${esc(summary)}</p></header>
<main>
<section aria-labelledby="h-clusters"><h2 id="h-clusters">Clusters</h2><div class="cards">${v.clusters.map((c) => clusterCard(c, now)).join('')}</div></section>
<section aria-labelledby="h-timeline"><h2 id="h-timeline">Timeline</h2>
<p>Today's line on the left, the furthest expiry on the right (logarithmic). Marked ⚠: within the warning window (issuers ${esc(formatDuration(v.warnings.issuerWarnMs))}, anchors ${esc(formatDuration(v.warnings.anchorWarnMs))}); ✖ expired.</p>
${v.timeline.length > 0 ? timelineSvg(v.timeline, now) : '<p>No cluster could be read yet.</p>'}</section>
<section aria-labelledby="h-matrix"><h2 id="h-matrix">Trust matrix</h2>${trustMatrix(v)}</section>
<section aria-labelledby="h-rotation"><h2 id="h-rotation">Rotation</h2>${rotation(v)}</section>
<section aria-labelledby="h-findings"><h2 id="h-findings">What lanyard check reports</h2>${findings(v)}</section>
</main></body></html>
`;
}

function clusterCard(c: ClusterView, now: Date): string {
  const id = `cluster-${esc(c.name)}`;
  const head = `<article class="cluster state-${c.state}" aria-labelledby="${id}"><h3 id="${id}">${esc(c.name)}</h3>`;
  if (c.state !== 'ok') {
    const label = c.state === 'pending' ? 'not read yet' : c.state;
    return `${head}<p><span class="badge ${c.state === 'pending' ? 'warn' : 'bad'}">${esc(label)}</span> ${esc(c.reason ?? '')}</p>${c.readAt !== null ? `<p>tried at ${esc(c.readAt)}</p>` : ''}</article>`;
  }
  const s = statusHref(c.name);
  const m = metricsHref(c.name);
  const link = (href: string, text: string): string => `<a href="${href}">${esc(text)}</a>`;
  const issuerLeft = c.issuer !== null ? Date.parse(c.issuer.notAfter) - now.getTime() : null;
  const metrics = c.metrics;
  const rows: [string, string][] = [
    ['Ready', link(s, c.ready === true ? 'ready' : 'not ready')],
    ['Certificates issued', link(s, String(c.certificatesIssued ?? 'unknown'))],
    [
      'Certify error ratio',
      metrics === null
        ? 'metrics unavailable'
        : link(
            m,
            c.errorRatio === null
              ? 'no call yet'
              : `${(c.errorRatio * 100).toFixed(1)} % (${metrics.certifyErrors} of ${metrics.certifyCalls})`,
          ),
    ],
    [
      'Last reload',
      metrics?.lastReload != null
        ? link(m, `${metrics.lastReload.result} at ${metrics.lastReload.at}`)
        : metrics === null
          ? 'metrics unavailable'
          : link(m, `${metrics.reloadsOk} ok, ${metrics.reloadsRejected} rejected`),
    ],
    [
      'Issuer expires',
      c.issuer === null || issuerLeft === null
        ? 'no issuer loaded'
        : link(
            s,
            `${c.issuer.notAfter} (${issuerLeft > 0 ? `in ${formatDuration(issuerLeft)}` : 'expired'})`,
          ),
    ],
  ];
  const badge =
    c.ready === true ? '<span class="badge ok">ready</span>' : '<span class="badge bad">not ready</span>';
  return `${head}<p>${badge} read at ${esc(c.readAt ?? '')}</p><dl>${rows.map(([k, val]) => `<dt>${esc(k)}</dt><dd>${val}</dd>`).join('')}</dl></article>`;
}

function trustMatrix(v: MeshView): string {
  if (v.anchors.length === 0) return '<p>No anchor known yet.</p>';
  const clusters = [...new Set(v.matrix.map((c) => c.cluster))];
  const head = v.anchors
    .map((a) => `<th scope="col">${esc(a.subject)}<br><small>${esc(a.fingerprint.slice(0, 23))}</small></th>`)
    .join('');
  const body = clusters
    .map((name) => {
      const cells = v.anchors
        .map((a) => {
          const cell = v.matrix.find((x) => x.cluster === name && x.anchor === a.fingerprint);
          if (cell === undefined) return '<td></td>';
          const text = `${cell.inBundle ? 'trusted' : 'not trusted'}${cell.issuerChains ? '; issuer chains here' : ''}`;
          const cls = cell.mismatch !== null ? 'mismatch' : cell.inBundle ? 'trusted' : '';
          const title = cell.mismatch !== null ? ` title="${esc(cell.mismatch)}"` : '';
          return `<td class="${cls}"${title}><a href="${statusHref(name)}">${esc(text)}</a>${cell.mismatch !== null ? `<br><small>${esc(cell.mismatch)}</small>` : ''}</td>`;
        })
        .join('');
      return `<tr><th scope="row">${esc(name)}</th>${cells}</tr>`;
    })
    .join('');
  const unread = v.clusters.filter((c) => c.state !== 'ok').map((c) => c.name);
  return `<table><caption>Which cluster trusts which anchor (its bundle), and which anchor its issuer chains to${unread.length > 0 ? `; not read: ${esc(unread.join(', '))}` : ''}</caption><thead><tr><th scope="col">cluster</th>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function rotation(v: MeshView): string {
  const r = v.rotation;
  if (r === null) return '<p>No cluster could be read: the rotation phase is unknown.</p>';
  const wait = r.waitUntil !== null ? ` (waits until ${esc(r.waitUntil)})` : '';
  const waits = r.waitsFor.length > 0 ? `<p>Waits for: ${esc(r.waitsFor.join(', '))}</p>` : '';
  return `<p>Mesh-wide: <strong>${esc(r.phase)}</strong>; next step: <strong>${esc(r.action)}</strong>${wait}: ${esc(r.reason)}</p>${waits}
<ul>${r.clusters.map((c) => `<li><a href="${statusHref(c.name)}">${esc(c.name)}</a>: ${esc(c.summary)}</li>`).join('')}${r.unread.map((n) => `<li>${esc(n)}: not read, left out of the phase</li>`).join('')}</ul>`;
}

function findings(v: MeshView): string {
  if (v.findings.length === 0)
    return '<p>Nothing to report: every issuer is trusted everywhere and nothing expires within the window.</p>';
  return `<ul class="findings">${v.findings
    .map(
      (f) =>
        `<li class="${f.severity}">${f.severity === 'error' ? 'FAIL' : 'WARN'} ${esc(f.cluster ?? 'mesh')}: ${esc(f.message)}</li>`,
    )
    .join('')}</ul>`;
}
