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
  /** Shorter than a second would ask workers for several beats a second. */
  heartbeatTimeoutSeconds: { min: 1, max: 60 * 60 * 24 },
  kinds: 50,
  /** Tasks in one page of a list (GraphQL `tasks(first:)`, REST `limit`). */
  pageSize: 100,
  /** Nesting of params and results: deeper JSON is a mistake or an attack (and recursion in the driver). */
  jsonDepth: 64,
} as const;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function taskId(value: string, field = 'id'): string {
  if (!uuid.test(value)) throw badInput(field, `"${truncate(value)}" is not a task id (a UUID)`);
  return value.toLowerCase();
}

// Control characters (C0, DEL, C1) reach an operator's terminal as escape sequences, and bidi
// overrides make a name read differently from what it is: a one-line label needs none of them.
const labelUnsafe = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;
// Free text (an error, a reason) may span lines: tab and newlines stay allowed.
const freeTextUnsafe = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;
// Half of a UTF-16 surrogate pair on its own: no character at all, and Postgres refuses it.
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A one-line label: a task's name, kind, message, a worker id. With
 * `multiline`, free text such as an error (tab and line breaks allowed).
 */
export function text(value: string, field: string, max: number, options: { allowEmpty?: boolean; multiline?: boolean } = {}): string {
  if (!options.allowEmpty && value.trim() === '') throw badInput(field, 'must not be empty');
  if (value.length > max) throw badInput(field, `must be at most ${max} characters (got ${value.length})`);
  const unsafe = (options.multiline ? freeTextUnsafe : labelUnsafe).exec(value)?.[0];
  if (unsafe !== undefined) throw badInput(field, `must not contain control or bidi-override characters (found ${codePoint(unsafe)})`);
  if (loneSurrogate.test(value)) throw badInput(field, 'must be well-formed Unicode (found a lone surrogate)');
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

export function optionalText(value: string | null | undefined, field: string, max: number, options: { multiline?: boolean } = {}): string | undefined {
  return value == null ? undefined : text(value, field, max, { ...options, allowEmpty: true });
}

export function progress(value: number, field = 'progress'): number {
  if (!Number.isFinite(value) || value < 0 || value > 100) {
    throw badInput(field, `must be a number from 0 to 100 (got ${value})`);
  }
  return value;
}

export function positive(value: number, field: string, max: number): number {
  if (!Number.isFinite(value) || value <= 0 || value > max) throw badInput(field, `must be greater than 0 and at most ${max} (got ${value})`);
  return value;
}

/**
 * The longest timeout a caller may give in minutes: 100 years. Past about 150 billion minutes the milliseconds
 * pass 2^53 and the database driver can no longer carry them as a number (the fuzz test found it: an
 * INTERNAL_SERVER_ERROR), and no stuck rule needs more than a century.
 */
export const MAX_TIMEOUT_MINUTES = 100 * 366 * 24 * 60;

/** A timeout a caller gives in minutes (stuck queries, cleanups), as milliseconds. */
export function minutes(value: number, field: string): number {
  if (!Number.isFinite(value) || value <= 0 || value > MAX_TIMEOUT_MINUTES) {
    throw badInput(field, `must be a positive number of minutes, at most ${MAX_TIMEOUT_MINUTES} (100 years) (got ${value})`);
  }
  return value * 60_000;
}

export function between(value: number, field: string, min: number, max: number): number {
  if (!Number.isFinite(value) || value < min || value > max) throw badInput(field, `must be from ${min} to ${max} (got ${value})`);
  return value;
}

export function wholeNumber(value: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw badInput(field, `must be a whole number from ${min} to ${max} (got ${value})`);
  return value;
}

/**
 * Checks a JSON value's nesting and encoded size, and that it holds nothing
 * Postgres' jsonb refuses (NUL characters, lone surrogates), so a bad value
 * never reaches the database. The walk is iterative and runs before
 * anything recursive (JSON.stringify, the driver) sees the value.
 */
export function json(value: unknown, field: string, maxBytes: number): unknown {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [item, depth] = pending.pop()!;
    if (typeof item === 'string') checkJsonString(item, field);
    if (item === null || typeof item !== 'object') continue;
    if (depth >= limits.jsonDepth) throw badInput(field, `must be nested at most ${limits.jsonDepth} levels deep`);
    for (const [key, child] of Object.entries(item)) {
      if (!Array.isArray(item)) checkJsonString(key, field);
      pending.push([child, depth + 1]);
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(value ?? null));
  if (bytes > maxBytes) throw badInput(field, `must be at most ${maxBytes} bytes of JSON (got ${bytes})`);
  return value;
}

function checkJsonString(value: string, field: string) {
  if (value.includes('\u0000')) throw badInput(field, 'must not contain NUL characters');
  if (loneSurrogate.test(value)) throw badInput(field, 'must be well-formed Unicode (found a lone surrogate)');
}

function codePoint(char: string) {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function kinds(values: readonly string[] | null | undefined): string[] | undefined {
  if (values == null) return undefined;
  if (values.length > limits.kinds) throw badInput('kinds', `at most ${limits.kinds} kinds`);
  return values.map((kind) => text(kind, 'kinds', limits.kind));
}

function truncate(value: string) {
  return value.length > 40 ? `${value.slice(0, 40)}…` : value;
}
