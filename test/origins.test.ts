import { request } from 'node:http';
import { createClient } from 'graphql-ws';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openTestDatabase, useTestDatabase } from './support/databases.js';
import { raw, rawGraphQL } from './support/http.js';
import { startTestServer, useTestServer } from './support/server.js';

// Which web pages and host names the API answers (Node-level: forged Origin and Host headers,
// as a hostile page or a DNS-rebinding attack sends them). The browser's view is in browser-origins.test.ts.

const CREATE = 'mutation { createTask(input: { name: "from elsewhere" }) { id } }';

/** A graphql-ws client whose WebSocket sends these headers. Resolves with the close code, or 'ok' once the mutation ran. */
async function wsCreate(url: string, headers: Record<string, string>, connectionParams?: Record<string, unknown>): Promise<number | 'ok' | string> {
  const Impl = class extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  };
  const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: Impl, retryAttempts: 0, lazy: true, connectionParams });
  try {
    return await new Promise((resolve) => {
      client.on('closed', (event) => resolve((event as { code: number }).code));
      client.on('error', (error) => resolve(`error: ${(error as Error).message ?? String(error)}`));
      client.subscribe({ query: CREATE }, { next: () => resolve('ok'), error: (e) => resolve(`error: ${JSON.stringify(e)}`), complete: () => {} });
    });
  } finally {
    await client.dispose();
  }
}

/** Opens an SSE subscription with these headers: the response status, once the stream's headers arrive (then it is closed). */
function sse(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}?query=${encodeURIComponent('subscription { taskUpdated { id } }')}`,
      { headers: { accept: 'text/event-stream', ...headers }, agent: false },
      (res) => {
        resolve(res.statusCode!);
        req.destroy();
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('browser origins and host names, open (tokenless) mode', () => {
  let port: string;
  const database = useTestDatabase('pglite');
  const server = useTestServer(database, { ALLOWED_HOSTS: 'taskwarden.lan' });
  beforeAll(async () => {
    port = new URL(server.url).port;
  });

  const tasks = () => database.db.prisma.task.count();

  it('refuses a request whose Host is not a loopback name (DNS rebinding), over HTTP and WebSocket', async () => {
    for (const host of ['evil.example', `evil.example:${port}`, `192.168.1.20:${port}`, `127.0.0.1.nip.io:${port}`]) {
      const response = await rawGraphQL(server.url, CREATE, { host });
      expect(response.status, host).toBe(403);
      expect(response.json.errors[0].extensions.code).toBe('FORBIDDEN');
      expect(response.json.errors[0].message).toContain('ALLOWED_HOSTS');
      expect(await wsCreate(server.url, { host })).toBe(4403);
    }
    expect(await tasks()).toBe(0);
  });

  it('answers loopback names and ALLOWED_HOSTS', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `app.localhost:${port}`, 'taskwarden.lan', `TaskWarden.lan:${port}`]) {
      const response = await rawGraphQL(server.url, CREATE, { host });
      expect(response.json?.data?.createTask?.id, host).toEqual(expect.any(String));
    }
    expect(await wsCreate(server.url, { host: `localhost:${port}` })).toBe('ok');
  });

  it('refuses requests from a web page of another origin: POST, GET, SSE and WebSocket', async () => {
    const subscriptions = server.taskwarden.services.bus.openSubscriptions;
    for (const origin of ['https://evil.example', `http://localhost:${Number(port) + 1}`, 'null']) {
      const post = await rawGraphQL(server.url, CREATE, { origin });
      expect(post.status, origin).toBe(403);
      expect(post.json.errors[0].extensions.code).toBe('FORBIDDEN');
      expect(post.headers['access-control-allow-origin']).toBeUndefined();
      const get = await raw(`${server.url}?query=${encodeURIComponent('{ tasks { totalCount } }')}`, { headers: { origin, accept: 'application/json' } });
      expect(get.status).toBe(403);
      expect(await sse(server.url, { origin })).toBe(403);
      expect(await wsCreate(server.url, { origin })).toMatch(/^error|1006|1002/);
    }
    expect(await tasks()).toBe(0);
    expect(server.taskwarden.services.bus.openSubscriptions).toBe(subscriptions);
  });

  it('answers its own pages (Origin equal to its Host) and clients that send no Origin', async () => {
    const own = `http://127.0.0.1:${port}`;
    expect((await rawGraphQL(server.url, CREATE, { origin: own })).json.data.createTask.id).toEqual(expect.any(String));
    expect((await rawGraphQL(server.url, CREATE)).json.data.createTask.id).toEqual(expect.any(String));
    expect(await wsCreate(server.url, { origin: own })).toBe('ok');
    expect(await wsCreate(server.url, {})).toBe('ok');
    expect(await tasks()).toBe(4);
  });

  it('applies the same rules to the REST API', async () => {
    const rest = server.url.replace(/\/graphql$/, '/api/v1/tasks/monitor/stuck');
    expect((await raw(rest)).status).toBe(200);
    const rebound = await raw(rest, { headers: { host: 'evil.example' } });
    expect(rebound.status).toBe(403);
    expect(rebound.json.error.code).toBe('FORBIDDEN');
    const foreign = await raw(rest, { headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.json.error.code).toBe('FORBIDDEN');
    // The seed's POSTs carry no body, so a page of another site could send them without a preflight.
    const cleanup = server.url.replace(/\/graphql$/, '/api/v1/tasks/monitor/cleanup?timeout_minutes=1&auto_fix=true');
    const forged = await raw(cleanup, { method: 'POST', headers: { origin: 'https://evil.example' } });
    expect(forged.status).toBe(403);
    expect(forged.json.error.code).toBe('FORBIDDEN');
  });

  it('sends no CORS headers by default, not even to a preflight', async () => {
    const preflight = await raw(server.url, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
  });
});

describe('CORS_ORIGINS', () => {
  it('lets the listed origins in (CORS, WebSocket, SSE), and no other', async () => {
    const database = await openTestDatabase('pglite');
    const secret = 'a-long-enough-secret-for-cors-tests';
    const server = await startTestServer(database, { CORS_ORIGINS: 'https://ops.example.com', TASKWARDEN_TOKENS: `ops:operator:${secret}` });
    const auth = { authorization: `Bearer ${secret}` };
    const preflight = await raw(server.url, {
      method: 'OPTIONS',
      headers: { origin: 'https://ops.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBe('https://ops.example.com');
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
    expect(String(preflight.headers['access-control-allow-headers'])).toContain('authorization');

    const allowed = await rawGraphQL(server.url, CREATE, { origin: 'https://ops.example.com', ...auth });
    expect(allowed.json.data.createTask.id).toEqual(expect.any(String));
    expect(allowed.headers['access-control-allow-origin']).toBe('https://ops.example.com');
    expect(await wsCreate(server.url, { origin: 'https://ops.example.com' }, auth)).toBe('ok');
    expect(await sse(server.url, { origin: 'https://ops.example.com', ...auth })).toBe(200);

    const other = await rawGraphQL(server.url, CREATE, { origin: 'https://evil.example', ...auth });
    expect(other.status).toBe(403);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(await wsCreate(server.url, { origin: 'https://evil.example' }, auth)).not.toBe('ok');

    // With tokens, the Host rule is not needed: a rebinding page has no token.
    expect((await rawGraphQL(server.url, CREATE, { host: 'taskwarden.example.com', ...auth })).json.data.createTask.id).toEqual(expect.any(String));
    expect(await database.db.prisma.task.count()).toBe(3);
    await server.stop();
    await database.close();
  });
});
