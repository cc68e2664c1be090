import { InvalidArgumentError } from 'commander';
import { taskStatuses, type TaskStatus } from '../client/index.js';
import { parseDuration } from '../duration.js';

/** `running` or `running,pending`, any case. */
export function statusList(value: string): TaskStatus[] {
  return value.split(',').map((part) => taskStatus(part.trim(), taskStatuses));
}

/** One of `allowed`, any case: `failed` -> FAILED. */
export function taskStatus<S extends TaskStatus>(value: string, allowed: readonly S[]): S {
  const upper = value.toUpperCase() as S;
  if (!allowed.includes(upper)) throw new InvalidArgumentError(`expected ${allowed.map((s) => s.toLowerCase()).join(', ')}`);
  return upper;
}

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of 1 or more');
  return n;
}

/** Minutes, as the seed took them (`30`), or a duration with its unit (`90s`, `2h`); returns minutes. */
export function minutes(value: string): number {
  const n = Number(value);
  if (value.trim() !== '' && Number.isFinite(n)) {
    if (n > 0) return n;
  } else {
    const ms = parseDuration(value);
    if (ms !== undefined) return ms / 60_000;
  }
  throw new InvalidArgumentError('expected minutes (30) or a duration (90s, 2h)');
}

/** An http(s) URL; a bare http://host:port means its /graphql endpoint. */
export function endpointUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected a URL such as http://localhost:4000/graphql');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('expected an http:// or https:// URL');
  if (url.pathname === '/') url.pathname = '/graphql';
  return url.toString();
}
