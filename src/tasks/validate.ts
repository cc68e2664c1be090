import { badInput } from '../errors.js';
import { actors } from './model.js';

/** Bounds on what a caller may store; each violation is a BAD_USER_INPUT naming the field. */
export const limits = {
  name: 200,
  kind: 100,
  workerId: 200,
  message: 1_000,
  reason: 1_000,
  error: 10_000,
  paramsBytes: 64 * 1024,
  resultBytes: 1024 * 1024,
  maxAttempts: 100,
  timeoutMinutes: 60 * 24 * 366,
  kinds: 50,
  /** Tasks in one page of a list (GraphQL `tasks(first:)`, REST `limit`). */
  pageSize: 100,
} as const;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function taskId(value: string, field = 'id'): string {
  if (!uuid.test(value)) throw badInput(field, `"${truncate(value)}" is not a task id (a UUID)`);
  return value.toLowerCase();
}

export function text(value: string, field: string, max: number, options: { allowEmpty?: boolean } = {}): string {
  if (!options.allowEmpty && value.trim() === '') throw badInput(field, 'must not be empty');
  if (value.length > max) throw badInput(field, `must be at most ${max} characters (got ${value.length})`);
  if (value.includes('\u0000')) throw badInput(field, 'must not contain NUL characters');
  return value;
}

/**
 * The names the history uses for changes that no worker made: a worker taking
 * one would forge its entries (`actor: "operator"`). Refused in any case or spacing.
 */
export const reservedWorkerIds: readonly string[] = [...Object.values(actors), 'scheduler'];

export function workerId(value: string): string {
  text(value, 'workerId', limits.workerId);
  if (reservedWorkerIds.includes(value.trim().toLowerCase())) {
    throw badInput('workerId', `"${value}" is reserved for the history's own actors (${reservedWorkerIds.join(', ')}); choose another worker id`);
  }
  return value;
}

export function optionalText(value: string | null | undefined, field: string, max: number): string | undefined {
  return value == null ? undefined : text(value, field, max, { allowEmpty: true });
}

export function progress(value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 100) {
    throw badInput('progress', `must be a number from 0 to 100 (got ${value})`);
  }
  return value;
}

export function positive(value: number, field: string, max: number): number {
  if (!Number.isFinite(value) || value <= 0 || value > max) throw badInput(field, `must be greater than 0 and at most ${max} (got ${value})`);
  return value;
}

/** A timeout a caller gives in minutes (stuck queries, cleanups), as milliseconds. */
export function minutes(value: number, field: string): number {
  if (!Number.isFinite(value) || value <= 0) throw badInput(field, `must be a positive number of minutes (got ${value})`);
  return value * 60_000;
}

export function wholeNumber(value: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw badInput(field, `must be a whole number from ${min} to ${max} (got ${value})`);
  return value;
}

/**
 * Checks a JSON value's encoded size, and that it holds nothing Postgres' jsonb
 * refuses (NUL characters), so a bad value never reaches the database.
 */
export function json(value: unknown, field: string, maxBytes: number): unknown {
  const encoded = JSON.stringify(value ?? null);
  const bytes = Buffer.byteLength(encoded);
  if (bytes > maxBytes) throw badInput(field, `must be at most ${maxBytes} bytes of JSON (got ${bytes})`);
  if (encoded.includes('\\u0000')) throw badInput(field, 'must not contain NUL characters');
  return value;
}

export function kinds(values: readonly string[] | null | undefined): string[] | undefined {
  if (values == null) return undefined;
  if (values.length > limits.kinds) throw badInput('kinds', `at most ${limits.kinds} kinds`);
  return values.map((kind) => text(kind, 'kinds', limits.kind));
}

function truncate(value: string) {
  return value.length > 40 ? `${value.slice(0, 40)}…` : value;
}
