/** The largest value a Postgres bigint holds: event ids, transaction ids and alert ids are bigints. */
const MAX_BIGINT = 9_223_372_036_854_775_807n;

/**
 * A bigint id from its decimal text (an alert id, a part of an event cursor), or null when the text
 * is none: not plain digits, or past what a bigint holds (Postgres would fail the query instead of
 * finding nothing).
 */
export function bigintId(text: string): bigint | null {
  if (!/^\d{1,19}$/.test(text)) return null;
  const value = BigInt(text);
  return value <= MAX_BIGINT ? value : null;
}
