// PromQL syntax (Prometheus's own lezer grammar) and the series selectors of an expression, matched
// against what the issuer's /metrics really exposes.
import { parser } from '@prometheus-io/lezer-promql';

export interface Matcher {
  readonly label: string;
  readonly op: '=' | '!=' | '=~' | '!~';
  readonly value: string;
}

export interface Selector {
  readonly text: string;
  readonly metric: string;
  readonly matchers: readonly Matcher[];
}

/** Syntax errors of a PromQL expression ([] when it parses). */
export function promqlErrors(expr: string): string[] {
  const errors: string[] = [];
  parser.parse(expr).iterate({
    enter: (n) => {
      if (n.type.isError)
        errors.push(`syntax error at ${n.from}: …${expr.slice(Math.max(0, n.from - 20), n.from + 20)}…`);
    },
  });
  return errors;
}

/** The vector selectors of an expression (metric name and label matchers), plus every `by (…)` label. */
export function selectorsOf(expr: string): { selectors: Selector[]; groupingLabels: string[] } {
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  const cursor = parser.parse(expr).cursor();
  const text = (from: number, to: number): string => expr.slice(from, to);
  do {
    if (cursor.name === 'GroupingLabels') {
      const node = cursor.node;
      for (const l of node.getChildren('LabelName')) groupingLabels.push(text(l.from, l.to));
    }
    if (cursor.name !== 'VectorSelector') continue;
    const node = cursor.node;
    const id = node.getChild('Identifier');
    const matchers: Matcher[] = [];
    const list = node.getChild('LabelMatchers');
    for (const m of list?.getChildren('UnquotedLabelMatcher') ?? []) {
      const label = m.getChild('LabelName');
      const op = m.getChild('MatchOp');
      const value = m.getChild('StringLiteral');
      if (label === null || op === null || value === null) continue;
      matchers.push({
        label: text(label.from, label.to),
        op: text(op.from, op.to) as Matcher['op'],
        value: JSON.parse(text(value.from, value.to)) as string,
      });
    }
    selectors.push({
      text: text(node.from, node.to),
      metric: id !== null ? text(id.from, id.to) : '',
      matchers,
    });
  } while (cursor.next());
  return { selectors, groupingLabels };
}

export interface Sample {
  readonly metric: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Samples of the Prometheus text exposition format (comments skipped). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1');
    out.push({ metric: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples a selector picks (regexes anchored, as PromQL does). */
export function select(samples: readonly Sample[], s: Selector): Sample[] {
  return samples.filter(
    (x) =>
      x.metric === s.metric &&
      s.matchers.every((m) => {
        const v = x.labels[m.label] ?? '';
        switch (m.op) {
          case '=':
            return v === m.value;
          case '!=':
            return v !== m.value;
          case '=~':
            return new RegExp(`^(?:${m.value})$`).test(v);
          case '!~':
            return !new RegExp(`^(?:${m.value})$`).test(v);
        }
      }),
  );
}
