/** "45 s", "3 min 12 s", "2 h 5 min", "3 d 4 h". */
export function duration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

export const percent = (rate: number | null | undefined) => (rate == null ? '—' : `${Number((rate * 100).toFixed(1))} %`);

export const progress = (value: number) => `${Math.round(value)} %`;

/** Time of day, with the date when it is not today. */
export function time(iso: string | null | undefined, options: { seconds?: boolean } = {}): string {
  if (!iso) return '—';
  const date = new Date(iso);
  const clock: Intl.DateTimeFormatOptions = { hour: '2-digit', minute: '2-digit', ...(options.seconds === false ? {} : { second: '2-digit' }) };
  const today = new Date().toDateString() === date.toDateString();
  return date.toLocaleString([], today ? clock : { month: 'short', day: 'numeric', ...clock });
}

/** Seconds a server-side span has grown to since the copy holding it arrived. */
export const grown = (seconds: number, seenAt: number, now: number) => seconds + Math.max(0, now - seenAt) / 1000;

export const json = (value: unknown) => JSON.stringify(value, null, 2);
