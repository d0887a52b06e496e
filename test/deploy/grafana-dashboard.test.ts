// The Grafana dashboard (deploy/components/prometheus/grafana-dashboard.json) and the alert rules:
// every PromQL expression parses with Prometheus's own grammar, and every metric it reads is one the
// issuer's registries define (read from issuer/metrics.ts, not from a list kept here).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { createIssuerMetrics } from '../../issuer/metrics.js';
import { promqlErrors, selectorsOf } from './promql.js';
import { DEPLOY_DIR, readDocs } from './support.js';

interface Panel {
  readonly title: string;
  readonly type: string;
  readonly gridPos: { readonly h: number; readonly w: number; readonly x: number; readonly y: number };
  readonly targets?: readonly { readonly expr: string; readonly refId: string }[];
}

const dashboard = JSON.parse(
  readFileSync(join(DEPLOY_DIR, 'components', 'prometheus', 'grafana-dashboard.json'), 'utf8'),
) as { title: string; uid: string; schemaVersion: number; panels: readonly Panel[] };
const rules = readDocs(join(DEPLOY_DIR, 'components', 'prometheus', 'prometheusrule.yaml'))[0]
  ?.value as IPrometheusRule;

/** Every series name the issuer exposes: each metric of both registries (histograms by their series). */
function exportedNames(): Set<string> {
  const m = createIssuerMetrics();
  const names = new Set<string>();
  for (const metric of [...m.requestRegistry.getMetricsAsArray(), ...m.stateRegistry.getMetricsAsArray()]) {
    const { name, type } = metric as unknown as { name: string; type: string };
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(`${name}${s}`);
    else names.add(name);
  }
  return names;
}

/** The metric names an expression reads that the issuer does not expose. */
function unknownMetrics(expr: string, exported: ReadonlySet<string>): string[] {
  return selectorsOf(expr)
    .selectors.map((s) => s.metric)
    .filter((n) => !exported.has(n));
}

const expressions = (): { where: string; expr: string }[] => [
  ...dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr })),
  ),
  ...(rules.spec.groups ?? []).flatMap((g) =>
    (g.rules ?? []).map((r) => ({ where: `rule ${r.alert ?? r.record ?? ''}`, expr: String(r.expr) })),
  ),
];

describe('the Grafana dashboard and the alert rules', () => {
  const exported = exportedNames();

  it('the issuer registries are read, not listed: they hold the request, expiry and reload metrics', () => {
    for (const n of [
      'lanyard_requests_total',
      'lanyard_request_duration_seconds_bucket',
      'lanyard_issuer_expiry_timestamp_seconds',
      'lanyard_anchor_expiry_timestamp_seconds',
      'lanyard_intermediate_expiry_timestamp_seconds',
      'lanyard_credential_last_reload_timestamp_seconds',
    ])
      assert.ok(exported.has(n), n);
    assert.deepEqual(unknownMetrics('sum(rate(lanyard_no_such_metric_total[5m]))', exported), [
      'lanyard_no_such_metric_total',
    ]);
  });

  it('every expression is valid PromQL and reads only metrics the issuer exports', () => {
    const all = expressions();
    assert.ok(all.length >= 20, `only ${all.length} expressions`);
    for (const { where, expr } of all) {
      assert.deepEqual(promqlErrors(expr), [], `${where}: ${expr}`);
      assert.ok(selectorsOf(expr).selectors.length > 0, `${where} reads no metric`);
      assert.deepEqual(unknownMetrics(expr, exported), [], `${where}: ${expr}`);
    }
  });

  it('is a dashboard Grafana imports, with the panels the operators asked for', () => {
    assert.equal(typeof dashboard.title, 'string');
    assert.match(dashboard.uid, /^[a-z0-9-]{1,40}$/);
    assert.ok(dashboard.schemaVersion >= 30);
    const ids = new Set<string>();
    for (const p of dashboard.panels) {
      assert.ok(p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, p.title);
      assert.ok(!ids.has(p.title), `two panels titled ${p.title}`);
      ids.add(p.title);
    }
    const reads = (metric: string): boolean =>
      dashboard.panels.some((p) =>
        (p.targets ?? []).some((t) => selectorsOf(t.expr).selectors.some((s) => s.metric === metric)),
      );
    for (const metric of [
      'lanyard_requests_total',
      'lanyard_request_duration_seconds_bucket',
      'lanyard_requests_in_flight',
      'lanyard_issuer_expiry_timestamp_seconds',
      'lanyard_anchor_expiry_timestamp_seconds',
      'lanyard_credential_reloads_total',
    ])
      assert.ok(reads(metric), `no panel reads ${metric}`);
  });
});
