import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from './support/databases.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Collects what a graphql-ws subscription delivers, so a test can wait for the nth message. */
function subscribe(server: TestServer, query: string, variables: Record<string, unknown> = {}) {
  const client: Client = server.ws();
  const bus = server.taskwarden.services.bus;
  const openBefore = bus.openSubscriptions;
  const messages: any[] = [];
  const errors: unknown[] = [];
  let completed = false;
  const waiters: (() => void)[] = [];
  const notify = () => waiters.splice(0).forEach((w) => w());
  const unsubscribe = client.subscribe(
    { query, variables },
    {
      next: (message) => {
        messages.push(message);
        notify();
      },
      error: (error) => {
        errors.push(error);
        notify();
      },
      complete: () => {
        completed = true;
        notify();
      },
    },
  );
  const result = {
    messages,
    errors,
    /** Resolves once the server is listening for this subscription's events. */
    ready: () => result.until(() => bus.openSubscriptions > openBefore),
    get completed() {
      return completed;
    },
    unsubscribe,
    async until(check: () => boolean, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(messages)} errors ${JSON.stringify(errors)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 20);
        });
      }
    },
  };
  return result;
}

describeEachDatabase('live updates [%s]', (kind) => {
  let database: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    database = await openTestDatabase(kind);
    server = await startTestServer(database);
  });
  afterAll(async () => {
    await server.stop();
    await database.close();
  });
  beforeEach(() => database.reset());

  const create = async (name: string, kind = 'backtest') =>
    (await server.ok(`mutation($n: String!, $k: String) { createTask(input: { name: $n, kind: $k }) { id } }`, { n: name, k: kind })).createTask.id as string;
  const start = async (id: string) =>
    (await server.ok(`mutation($id: ID!) { startTask(id: $id, workerId: "w") { leaseToken } }`, { id })).startTask.leaseToken as string;
  const progress = (id: string, lease: string, p: number, message?: string) =>
    server.ok(`mutation($id: ID!, $l: String!, $p: Float, $m: String) { reportProgress(id: $id, leaseToken: $l, progress: $p, message: $m) { id } }`, {
      id,
      l: lease,
      p,
      m: message,
    });

  it('streams every transition and progress change over graphql-ws, filtered by kind', async () => {
    const sub = subscribe(server, `subscription { taskUpdated(kinds: ["backtest"]) { id type kind progress toStatus actor task { name progress status } } }`);
    await sub.ready();
    const id = await create('bt');
    await create('opt', 'optimize');
    const lease = await start(id);
    await progress(id, lease, 45, 'simulating');
    await server.ok(`mutation($id: ID!, $l: String!) { reportProgress(id: $id, leaseToken: $l) { id } }`, { id, l: lease }); // a bare heartbeat
    await server.ok(`mutation($id: ID!, $l: String!) { completeTask(id: $id, leaseToken: $l, result: { ok: true }) { id } }`, { id, l: lease });
    await sub.until(() => sub.messages.length >= 4);
    const events = sub.messages.map((m) => m.data.taskUpdated);
    expect(events.map((e) => [e.type, e.toStatus, e.task.progress])).toEqual([
      ['CREATED', 'PENDING', 0],
      ['STARTED', 'RUNNING', 0],
      ['PROGRESS', 'RUNNING', 45],
      ['COMPLETED', 'COMPLETED', 100],
    ]);
    expect(events.every((e) => e.kind === 'backtest')).toBe(true);
    sub.unsubscribe();
  });

  it('replays what a client missed when it resubscribes with afterEventId', async () => {
    const id = await create('bt');
    const lease = await start(id);
    const seen = (await server.ok(`query($id: ID!) { taskEvents(taskId: $id) { id } }`, { id })).taskEvents;
    const lastSeen = seen[0].id; // the client saw CREATED, then lost its connection
    await progress(id, lease, 10);
    await progress(id, lease, 20);

    const sub = subscribe(server, `subscription($id: ID, $after: ID) { taskUpdated(id: $id, afterEventId: $after) { id type progress } }`, {
      id,
      after: lastSeen,
    });
    await sub.until(() => sub.messages.length >= 3);
    await progress(id, lease, 30);
    await sub.until(() => sub.messages.length >= 4);
    const events = sub.messages.map((m) => m.data.taskUpdated);
    expect(events.map((e) => [e.type, e.progress])).toEqual([
      ['STARTED', 0],
      ['PROGRESS', 10],
      ['PROGRESS', 20],
      ['PROGRESS', 30],
    ]);
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    sub.unsubscribe();
  });

  it('gives taskProgress the current state first, then each change, and completes at a terminal state', async () => {
    const id = await create('bt');
    const lease = await start(id);
    await progress(id, lease, 30, 'loading data');
    const sub = subscribe(server, `subscription($id: ID!) { taskProgress(id: $id) { status progress message } }`, { id });
    await sub.until(() => sub.messages.length >= 1);
    await progress(id, lease, 90, 'saving results');
    await server.ok(`mutation($id: ID!) { forceComplete(id: $id, status: FAILED, reason: "stuck at 90%") { id } }`, { id });
    await sub.until(() => sub.completed);
    expect(sub.messages.map((m) => m.data.taskProgress)).toEqual([
      { status: 'RUNNING', progress: 30, message: 'loading data' },
      { status: 'RUNNING', progress: 90, message: 'saving results' },
      { status: 'FAILED', progress: 90, message: 'saving results' },
    ]);
  });

  it('fails taskProgress at once for an unknown or malformed task', async () => {
    const missing = subscribe(server, `subscription { taskProgress(id: "00000000-0000-4000-8000-000000000000") { id } }`);
    await missing.until(() => missing.messages.length > 0 || missing.errors.length > 0);
    expect(JSON.stringify([missing.messages, missing.errors])).toContain('NOT_FOUND');
    const malformed = subscribe(server, `subscription { taskProgress(id: "x") { id } }`);
    await malformed.until(() => malformed.messages.length > 0 || malformed.errors.length > 0);
    expect(JSON.stringify([malformed.messages, malformed.errors])).toContain('BAD_USER_INPUT');
    const invalid = subscribe(server, `subscription { taskProgress(id: "x") { nope } }`);
    await invalid.until(() => invalid.errors.length > 0);
    expect(JSON.stringify(invalid.errors)).toContain('GRAPHQL_VALIDATION_FAILED');
  });

  it('sends a stuckTaskDetected alert when a sweep handles a stuck task', async () => {
    const sub = subscribe(server, `subscription { stuckTaskDetected { reason actionTaken stuckForSeconds actor task { id status } } }`);
    await sub.ready();
    const id = await create('frozen');
    await start(id);
    server.clock.advance(2 * 3600_000);
    await server.ok(`mutation { runMonitorSweep { fixed { id } } }`);
    await sub.until(() => sub.messages.length >= 1);
    expect(sub.messages[0].data.stuckTaskDetected).toEqual({
      reason: 'NO_HEARTBEAT',
      actionTaken: 'CANCEL',
      stuckForSeconds: 7200,
      actor: 'monitor',
      task: { id, status: 'CANCELLED' },
    });
    sub.unsubscribe();
  });

  it('serves taskProgress over SSE as well', async () => {
    const id = await create('bt');
    const lease = await start(id);
    const controller = new AbortController();
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: `subscription($id: ID!) { taskProgress(id: $id) { status progress } }`, variables: { id } }),
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
    };
    await readUntil(/"progress":0/);
    await progress(id, lease, 64);
    await readUntil(/"progress":64/);
    await server.ok(`mutation($id: ID!, $l: String!) { completeTask(id: $id, leaseToken: $l) { id } }`, { id, l: lease });
    await readUntil(/event: complete/);
    const data = [...text.matchAll(/^data: (.+)$/gm)].map((m) => m[1]).filter((d) => d !== '' && d !== '{}');
    expect(data.map((d) => JSON.parse(d!).data.taskProgress)).toEqual([
      { status: 'RUNNING', progress: 0 },
      { status: 'RUNNING', progress: 64 },
      { status: 'COMPLETED', progress: 100 },
    ]);
    controller.abort();
  });
});
