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

/**
 * The constant right-hand side of an alert of the shape `<expr> < N` or `<expr> <= N` (N built from
 * numbers with + - * /, as in `7 * 86400`), evaluated; undefined for any other shape.
 */
export function upperBoundOf(expr: string): number | undefined {
  const top = parser.parse(expr).topNode.firstChild;
  if (top?.name !== 'BinaryExpr') return undefined;
  const op = top.firstChild?.nextSibling;
  const rhs = op?.nextSibling;
  if ((op?.name !== 'Lss' && op?.name !== 'Lte') || rhs === null || rhs === undefined) return undefined;
  const evaluate = (n: NonNullable<typeof rhs>): number | undefined => {
    if (n.name === 'NumberDurationLiteral') {
      const v = Number(expr.slice(n.from, n.to));
      return Number.isFinite(v) ? v : undefined;
    }
    if (n.name === 'ParenExpr') return n.firstChild !== null ? evaluate(n.firstChild) : undefined;
    if (n.name !== 'BinaryExpr') return undefined;
    const [l, o, r] = [n.firstChild, n.firstChild?.nextSibling, n.firstChild?.nextSibling?.nextSibling];
    if (l === null || o === null || o === undefined || r === null || r === undefined) return undefined;
    const a = evaluate(l);
    const b = evaluate(r);
    if (a === undefined || b === undefined) return undefined;
    switch (o.name) {
      case 'Mul':
        return a * b;
      case 'Div':
        return a / b;
      case 'Add':
        return a + b;
      case 'Sub':
        return a - b;
      default:
        return undefined;
    }
  };
  return evaluate(rhs);
}

/** The selector an expression of the shape `absent(<selector>)` watches; undefined for any other shape. */
export function absentSelectorOf(expr: string): Selector | undefined {
  const top = parser.parse(expr).topNode.firstChild;
  if (top?.name !== 'FunctionCall') return undefined;
  const fn = top.getChild('FunctionIdentifier');
  if (fn === null || expr.slice(fn.from, fn.to) !== 'absent') return undefined;
  const body = top.getChild('FunctionCallBody');
  const arg = body?.firstChild;
  if (arg?.name !== 'VectorSelector' || arg.nextSibling !== null) return undefined;
  return selectorsOf(expr).selectors[0];
}
