import ms from 'ms';

// Apart from config.ts so that the CLI can parse durations without loading zod.

/** Parses `30m`, `90s`, `1h`, `1.5h`, `500ms` into milliseconds; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  if (!/^\s*\d+(\.\d+)?\s*[a-z]+\s*$/i.test(text)) return undefined; // a bare number has no unit: ambiguous
  const value = ms(text.trim() as ms.StringValue);
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}
