// Promises of the README's limits and operations parts that no other test held: the armor limits by
// their settings, the Content-Length rule, SSE streams counting toward the connection cap and ending
// at shutdown, a client's x-request-id kept, and /ready while a migration is pending.
import { request } from 'node:http';
import { createClient } from 'graphql-ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { raw } from './support/http.js';
import { useTestDatabase } from './support/databases.js';
import { until } from './support/receiver.js';
import { startTestServer } from './support/server.js';

const json = { 'content-type': 'application/json' };

/** Opens an SSE subscription and keeps reading it; `text` grows as the server writes. */
async function openStream(url: string, query: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...json, accept: 'text/event-stream', ...headers },
    body: JSON.stringify({ query }),
    signal: controller.signal,
  });
  const stream = { status: response.status, text: '', ended: false, close: () => controller.abort() };
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  void (async () => {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      stream.text += decoder.decode(chunk.value, { stream: true });
    }
  })()
    .catch(() => {})
    .finally(() => (stream.ended = true));
  return stream;
}

describe('limits, request ids and readiness', () => {
  const database = useTestDatabase('pglite', { reset: false, timeout: 120_000 });

  it('refuses a query over MAX_TOKENS or MAX_QUERY_COST with a stable code, and runs one under them', async () => {
    // graphql-armor checks both while parsing, before anything runs.
    for (const [env, over, message, code] of [
      // 30 variable definitions: over 60 lexer tokens, at the cost of one field.
      [
        { MAX_TOKENS: '60' },
        `query (${Array.from({ length: 30 }, (_, i) => `$v${i}: Int`).join(', ')}) { monitor { enabled } }`,
        /token limit of 60/i,
        'GRAPHQL_PARSE_FAILED',
      ],
      [{ MAX_QUERY_COST: '40' }, `{ monitor { ${'enabled '.repeat(30)} } }`, /cost limit of 40/i, 'GRAPHQL_PARSE_FAILED'],
    ] as const) {
      const server = await startTestServer(database, env);
      try {
        expect((await server.gql('{ monitor { enabled } }')).errors).toBeUndefined();
        const refused = await server.gql(over);
        expect(refused.data ?? null).toBeNull();
        expect(refused.errors![0]!.message).toMatch(message);
        expect(refused.errors![0]!.extensions!.code).toBe(code);
      } finally {
        await server.stop();
      }
    }
  });

  it('needs a Content-Length on a POST and refuses one that is not a number or is over MAX_BODY_BYTES, writing nothing', async () => {
    const server = await startTestServer(database, { MAX_BODY_BYTES: '1024' });
    try {
      const body = JSON.stringify({ query: 'mutation { createTask(input: { name: "length rule" }) { id } }' });
      const send = (headers: Record<string, string>) =>
        new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = request(server.url, { method: 'POST', headers: { ...json, ...headers }, agent: false }, (res) => {
            let text = '';
            res.on('data', (chunk) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode!, text }));
          });
          req.on('error', reject);
          req.end(body);
        });
      // Chunked: no length at all.
      const chunked = await send({ 'transfer-encoding': 'chunked' });
      expect(chunked.status).toBe(411);
      expect(JSON.parse(chunked.text).errors[0].extensions.code).toBe('BAD_REQUEST');
      const over = await raw(server.url, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ query: '{ monitor { enabled } }', variables: { pad: 'x'.repeat(2000) } }),
      });
      expect(over.status).toBe(413);
      expect(over.json.errors[0].message).toContain('MAX_BODY_BYTES');
      expect(await database.db.prisma.task.count()).toBe(0);
      const fine = await raw(server.url, { method: 'POST', headers: json, body });
      expect(fine.status).toBe(200);
      expect(await database.db.prisma.task.count()).toBe(1);
    } finally {
      await server.stop();
      await database.reset();
    }
  });

  it('keeps a sane x-request-id a client sends, and replaces one that is not', async () => {
    const server = await startTestServer(database);
    try {
      const kept = await raw(server.url, {
        method: 'POST',
        headers: { ...json, 'x-request-id': 'backtest-runner.42' },
        body: JSON.stringify({ query: '{ nope }' }),
      });
      expect(kept.headers['x-request-id']).toBe('backtest-runner.42');
      expect(kept.json.errors[0].extensions.requestId).toBe('backtest-runner.42');
      const replaced = await raw(server.url, {
        method: 'POST',
        headers: { ...json, 'x-request-id': 'a b<script>'.padEnd(80, 'x') },
        body: JSON.stringify({ query: '{ monitor { enabled } }' }),
      });
      expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await server.stop();
    }
  });

  it("counts SSE streams toward a token's connection cap with its WebSockets, and frees the slot when one ends", async () => {
    const server = await startTestServer(database, { MAX_CONNECTIONS_PER_TOKEN: '2', TASKWARDEN_TOKENS: 'watcher:viewer:a-viewer-secret-of-16' });
    const auth = { authorization: 'Bearer a-viewer-secret-of-16' };
    const socket = createClient({
      url: server.url.replace('http', 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      connectionParams: auth,
      onNonLazyError: () => {},
    });
    try {
      await new Promise((resolve) => socket.on('connected', resolve));
      const first = await openStream(server.url, 'subscription { taskUpdated { id } }', auth);
      expect(first.status).toBe(200);
      // The socket and the first stream hold both slots: a second stream is refused.
      const second = await openStream(server.url, 'subscription { taskUpdated { id } }', auth);
      await until(() => second.text.includes('LIMIT_EXCEEDED') || second.ended, 10_000);
      expect(second.text).toContain('LIMIT_EXCEEDED');
      second.close();
      first.close();
      // Once the first stream is gone, its slot serves a new one.
      await until(async () => {
        const third = await openStream(server.url, 'subscription { taskUpdated { id } }', auth);
        await new Promise((r) => setTimeout(r, 300));
        third.close();
        return !third.text.includes('LIMIT_EXCEEDED');
      }, 10_000);
    } finally {
      await socket.dispose();
      await server.stop();
    }
  });

  it('completes open SSE streams when the server stops', async () => {
    const server = await startTestServer(database);
    const stream = await openStream(server.url, 'subscription { taskUpdated { id } }');
    expect(stream.status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(stream.ended).toBe(false);
    const stopping = server.stop();
    await until(() => stream.ended, 10_000);
    await stopping;
    // graphql-sse's end of stream: a "complete" event, not a dropped connection.
    expect(stream.text).toMatch(/event: complete/);
  });

  it('answers /ready 503 while a migration is pending, and 200 once it is applied', async () => {
    const server = await startTestServer(database);
    const ready = () => fetch(server.url.replace('/graphql', '/ready')).then((r) => r.status);
    const prisma = database.db.prisma;
    const [latest] = await prisma.$queryRawUnsafe<{ migration_name: string }[]>(
      'SELECT migration_name FROM "_prisma_migrations" ORDER BY migration_name DESC LIMIT 1',
    );
    try {
      expect(await ready()).toBe(200);
      // As if a newer build ran against a database that has not had its migration yet.
      await prisma.$executeRawUnsafe('UPDATE "_prisma_migrations" SET finished_at = NULL WHERE migration_name = $1', latest!.migration_name);
      expect(await ready()).toBe(503);
    } finally {
      await prisma.$executeRawUnsafe('UPDATE "_prisma_migrations" SET finished_at = now() WHERE migration_name = $1', latest!.migration_name);
    }
    expect(await ready()).toBe(200);
    await server.stop();
  });
});
