import { jsonOrNothing } from './http.js';

/** One REST call's answer, read once. */
export interface RestAnswer {
  status: number;
  headers: Headers;
  json: any;
  text: string;
}

/** Calls the REST API of a running server (its GraphQL URL's origin), with a token when given. */
export function restClient(graphqlUrl: string) {
  const origin = new URL(graphqlUrl).origin;
  return {
    origin,
    async call(method: string, path: string, token?: string): Promise<RestAnswer> {
      const response = await fetch(`${origin}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
      const text = await response.text();
      return { status: response.status, headers: response.headers, json: jsonOrNothing(text), text };
    },
  };
}

/** The GraphQL fields of a task that the REST API also shows. */
export const TASK_FIELDS =
  'id name kind status progress message attempt maxAttempts workerId timeoutMinutes error createdAt startedAt lastHeartbeatAt lastProgressAt completedAt durationSeconds isStuck stuckReason stuckSince stuckForSeconds';

const enums = new Set(['status', 'stuckReason', 'action']);

/** A GraphQL answer in the REST API's words: snake_case keys, lower-case enum values. */
export function asRest(value: unknown): any {
  if (Array.isArray(value)) return value.map(asRest);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [
      key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
      enums.has(key) && typeof v === 'string' ? v.toLowerCase() : asRest(v),
    ]),
  );
}
