/** Longest caller-supplied string an error message quotes, in UTF-16 code units. */
export const MAX_QUOTED_CHARS = 256;

// Control, format (bidi overrides, zero-width), private-use, unassigned and surrogate code points,
// and the line/paragraph separators: JSON.stringify leaves all of these but C0 as they are.
const NON_PRINTABLE = /[\p{C}\p{Zl}\p{Zp}]/gu;

function escapeUnits(m: string): string {
  let out = '';
  for (let i = 0; i < m.length; i++) out += `\\u${m.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/**
 * A caller-supplied string (a requested identity, a name from a CSR) for an error or log message:
 * JSON-quoted with every non-printable character escaped, and cut to `max` characters with a marker
 * giving the full length. Messages reach gRPC status details and log lines, so they stay short and
 * hold no raw control bytes.
 */
export function quoteForMessage(value: string, max: number = MAX_QUOTED_CHARS): string {
  let text = value;
  let marker = '';
  if (value.length > max) {
    let end = max;
    const last = value.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--; // do not split a surrogate pair
    text = value.slice(0, end);
    marker = `… (${value.length} characters)`;
  }
  return JSON.stringify(text).replace(NON_PRINTABLE, escapeUnits) + marker;
}

/** Up to `maxItems` quoted strings, comma-separated in brackets, with a count of the rest. */
export function quoteListForMessage(values: readonly string[], maxItems = 3): string {
  const shown = values.slice(0, maxItems).map((v) => quoteForMessage(v));
  const rest = values.length - shown.length;
  return `[${shown.join(', ')}${rest > 0 ? `, … ${rest} more` : ''}]`;
}
