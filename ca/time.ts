// Instants as operators write them: the one RFC 3339 reader (serve --renew-after, rotate plan).

const RFC_3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * An RFC 3339 date-time (`2026-07-01T12:00:00Z`, `2026-07-01T14:00:00.5+02:00`): every field in
 * range (no 30 February), an explicit offset. undefined when `s` is not one. A leap second (:60)
 * reads as the next second; fractions below a millisecond are dropped.
 */
export function parseRfc3339(s: string): Date | undefined {
  const m = RFC_3339.exec(s);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Number(((m[7] ?? '') + '000').slice(0, 3));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMin = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // (Date.UTC reads years 0–99 as 1900–1999: the year is set on its own)
  const midnight = new Date(Date.UTC(2000, month - 1, day));
  midnight.setUTCFullYear(year, month - 1, day);
  const timeMs = ((hour * 60 + minute - offsetMin) * 60 + second) * 1000 + ms;
  return new Date(midnight.getTime() + timeMs);
}

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}
