import { REST_PREFIX } from '../rest/api.js';

export const GRAPHQL_PATH = '/graphql';
export const METRICS_PATH = '/metrics';

// Everything else is the dashboard's (GET and HEAD; other methods get yoga's 404).
const API_PATHS = [GRAPHQL_PATH, '/health', '/ready', METRICS_PATH, REST_PREFIX];

/** Whether a request is the API's (yoga answers it) rather than the dashboard's. */
export function isApiPath(url = '/'): boolean {
  const path = url.split('?', 1)[0]!;
  return API_PATHS.some((api) => path === api || path.startsWith(`${api}/`));
}

export function isRestPath(path: string): boolean {
  return path === REST_PREFIX || path.startsWith(`${REST_PREFIX}/`);
}
