// How the bench reports progress (stderr, one line each) and rounds its figures.

/** One progress line on stderr; stdout carries only the results. */
export const log = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};

export const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
