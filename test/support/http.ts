import { request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/**
 * One HTTP request with exactly the headers given (fetch will not send a
 * forged Host or Origin, a browser or an attacker's script does).
 */
export function raw(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers = { ...options.headers };
    if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
    const req = request(url, { method: options.method ?? 'GET', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text, json: jsonOrNothing(text) }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A GraphQL POST with the given extra headers (Host, Origin, Authorization). */
export function rawGraphQL(url: string, query: string, headers: Record<string, string> = {}, variables?: Record<string, unknown>) {
  return raw(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
}

/** A GraphQL POST through fetch: `body` an object (sent as JSON) or a string (sent as it is, malformed or not). */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: jsonOrNothing(text), text };
}

/** The JSON an answer carries, or undefined when its text is not JSON. */
export function jsonOrNothing(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
