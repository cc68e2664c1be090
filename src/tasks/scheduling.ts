import { createHash } from 'node:crypto';
import { badInput, TaskwardenError } from '../errors.js';

/**
 * Scheduling decisions that need no database: retry backoff, the shape of a
 * batch's dependencies, the digest that tells a repeated create from a
 * conflicting one.
 */

/** initial x factor^(attempt-1), capped at max; the same shape as RETRY_BACKOFF. */
export interface RetryBackoff {
  initialSeconds: number;
  factor: number;
  maxSeconds: number;
}

/** How tasks are scheduled: the default retry backoff and the per-kind limits set at start (RETRY_BACKOFF, KIND_LIMITS). */
export interface SchedulingSettings {
  /** A retry waits min(max, initial x factor^(attempt-1)) seconds, ±10%; a task may carry its own. */
  retryBackoff: RetryBackoff;
  /** KIND_LIMITS: written at start over what setKindLimit stored for these kinds. */
  kindLimits: Record<string, number>;
}

/** Bounds on a task's own backoff (a year at most: a longer wait is a mistake). */
export const backoffLimits = { seconds: 366 * 24 * 3600, factor: 100 } as const;

/** At most this many tasks in one createTasks (and one `submit --file`). */
export const maxBatch = 1000;
/** At most this many dependencies per task. */
export const maxDependencies = 100;
/** Jitter on a retry's delay: ±10%, so tasks failed together do not all come back at the same instant. */
export const backoffJitter = 0.1;

export function validBackoff(input: { [K in keyof RetryBackoff]?: number | null }, defaults: RetryBackoff, field = 'retryBackoff'): RetryBackoff {
  const pick = (value: number | null | undefined, fallback: number) => (value == null ? fallback : value);
  const initialSeconds = pick(input.initialSeconds, defaults.initialSeconds);
  const factor = pick(input.factor, defaults.factor);
  const maxSeconds = pick(input.maxSeconds, Math.max(defaults.maxSeconds, initialSeconds));
  if (!Number.isFinite(initialSeconds) || initialSeconds < 0 || initialSeconds > backoffLimits.seconds) {
    throw badInput(`${field}.initialSeconds`, `must be from 0 to ${backoffLimits.seconds} (got ${initialSeconds})`);
  }
  if (!Number.isFinite(factor) || factor < 1 || factor > backoffLimits.factor) {
    throw badInput(`${field}.factor`, `must be from 1 to ${backoffLimits.factor} (got ${factor})`);
  }
  if (!Number.isFinite(maxSeconds) || maxSeconds < initialSeconds || maxSeconds > backoffLimits.seconds) {
    throw badInput(`${field}.maxSeconds`, `must be from initialSeconds (${initialSeconds}) to ${backoffLimits.seconds} (got ${maxSeconds})`);
  }
  return { initialSeconds, factor, maxSeconds };
}

/**
 * The wait before attempt `attempt + 1`, after attempt `attempt` failed:
 * min(max, initial x factor^(attempt-1)), then ±10% jitter. `random` is in [0, 1).
 */
export function backoffSeconds(backoff: RetryBackoff, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(backoff.maxSeconds, backoff.initialSeconds * backoff.factor ** Math.max(0, attempt - 1));
  return base * (1 + backoffJitter * (2 * random() - 1));
}

/**
 * When a task back in PENDING for another attempt may run again: now + its
 * own backoff (or `defaults`) for the attempt that just ended, ±10%; and
 * the words its history entry records ("retry in 31.4s").
 */
export function retryDelay(
  task: { attempt: number; backoffInitialSeconds: number | null; backoffFactor: number | null; backoffMaxSeconds: number | null },
  defaults: RetryBackoff,
  now: Date,
): { runAt: Date; note: string } {
  const own =
    task.backoffInitialSeconds === null || task.backoffFactor === null || task.backoffMaxSeconds === null
      ? defaults
      : { initialSeconds: task.backoffInitialSeconds, factor: task.backoffFactor, maxSeconds: task.backoffMaxSeconds };
  const ms = Math.round(backoffSeconds(own, task.attempt) * 1000);
  return { runAt: new Date(now.getTime() + ms), note: `retry in ${(ms / 1000).toFixed(1)}s` };
}

/** Parses RETRY_BACKOFF (`30s,2,30m`: initial delay, factor, cap); undefined when malformed. */
export function parseBackoff(text: string, parseDuration: (text: string) => number | undefined): RetryBackoff | undefined {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.length !== 3) return undefined;
  const initial = parts[0] === '0' ? 0 : parseDuration(parts[0]!);
  const factor = Number(parts[1]);
  const max = parseDuration(parts[2]!);
  if (initial === undefined || max === undefined || !Number.isFinite(factor) || factor < 1 || factor > backoffLimits.factor || max < initial) return undefined;
  return { initialSeconds: initial / 1000, factor, maxSeconds: max / 1000 };
}

/**
 * Checks a batch's dependencies by index: in range, not on itself, no cycle.
 * Returns an order in which every item comes after the items it depends on.
 */
export function batchOrder(dependsOnIndex: readonly (readonly number[])[]): number[] {
  const n = dependsOnIndex.length;
  dependsOnIndex.forEach((indexes, i) => {
    for (const j of indexes) {
      if (!Number.isInteger(j) || j < 0 || j >= n) throw badInput(`inputs[${i}].dependsOnIndex`, `${j} is not an index of this batch (0 to ${n - 1})`);
      if (j === i) throw cycle([i]);
    }
  });
  // Depth-first, iterative (a chain of 1,000 must not exhaust the stack); grey = on the current path.
  const state = new Uint8Array(n); // 0 new, 1 on path, 2 done
  const order: number[] = [];
  for (let root = 0; root < n; root++) {
    if (state[root]) continue;
    const stack: [number, number][] = [[root, 0]];
    state[root] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [node, next] = top;
      const deps = dependsOnIndex[node]!;
      if (next < deps.length) {
        top[1]++;
        const dep = deps[next]!;
        if (state[dep] === 1) throw cycle([...stack.slice(stack.findIndex(([k]) => k === dep)).map(([k]) => k), dep]);
        if (state[dep] === 0) {
          state[dep] = 1;
          stack.push([dep, 0]);
        }
      } else {
        state[node] = 2;
        order.push(node);
        stack.pop();
      }
    }
  }
  return order;
}

const cycle = (indexes: number[]) =>
  new TaskwardenError(
    'DEPENDENCY_CYCLE',
    `These tasks depend on each other in a cycle (by index: ${indexes.join(' -> ')}); none would ever run. Nothing was created.`,
    {
      indexes,
    },
  );

/** A stable digest of what a create asked for: the same input under the same key is a repeat, another is a conflict. */
export function inputDigest(input: unknown): string {
  return createHash('sha256').update(canonical(input)).digest('base64url');
}

function canonical(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && v !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
