import { createClient, type Client } from 'graphql-ws';
import { expect, it } from 'vitest';
import WebSocket from 'ws';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { until } from './support/receiver.js';
import { startTestServer, type TestServer, useTestServer } from './support/server.js';

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
  const database = useTestDatabase(kind);
  const server = useTestServer(database);

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
    // New messages: the history keeps every change of message (progress alone is sampled).
    await progress(id, lease, 10, 'phase 1');
    await progress(id, lease, 20, 'phase 2');

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

  it(
    'ends a client that stops reading with SUBSCRIPTION_OVERFLOW; resuming from the last id it got misses and repeats nothing',
    { timeout: 120_000 },
    async () => {
      const small = await startTestServer(database, { SUBSCRIPTION_BUFFER: '5' });
      try {
        // A graphql-ws client whose socket the test can stop reading, as a stalled browser tab would.
        const sockets: WebSocket[] = [];
        const client = createClient({
          url: small.url.replace(/^http/, 'ws'),
          retryAttempts: 0,
          webSocketImpl: class extends WebSocket {
            constructor(...args: ConstructorParameters<typeof WebSocket>) {
              super(...args);
              sockets.push(this);
            }
          },
        });
        const bus = small.taskwarden.services.bus;
        const baseline = bus.openSubscriptions;
        const first: string[] = [];
        let ended: unknown;
        client.subscribe(
          { query: 'subscription { taskUpdated { id task { params } } }' },
          { next: (m: any) => void first.push(m.data.taskUpdated.id), error: (e) => void (ended = e), complete: () => {} },
        );
        await until(() => bus.openSubscriptions > baseline);
        sockets[0]!.pause();
        // Large events fill the socket's buffers, then the subscription's 5; it is ended rather than grown.
        const params = { prices: 'x'.repeat(60_000) };
        for (let i = 0; bus.openSubscriptions > baseline; i++) {
          if (i > 500) throw new Error('the subscription never overflowed');
          await small.ok(`mutation($p: JSON) { createTask(input: { name: "big", params: $p }) { id } }`, { p: params });
        }
        for (let i = 0; i < 3; i++) await small.ok(`mutation { createTask(input: { name: "after the overflow" }) { id } }`);
        sockets[0]!.resume();
        await until(() => ended !== undefined, 20_000);
        expect(ended).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'SUBSCRIPTION_OVERFLOW' }) })]);
        expect(first.length).toBeGreaterThan(0);
        await client.dispose();

        const all: string[] = [];
        for (;;) {
          const page = (await small.ok('query($after: ID) { taskEvents(first: 100, afterEventId: $after) { id } }', { after: all.at(-1) })).taskEvents;
          all.push(...page.map((e: { id: string }) => e.id));
          if (page.length < 100) break;
        }
        const resumed = subscribe(small, 'subscription($after: ID) { taskUpdated(afterEventId: $after) { id } }', { after: first.at(-1) });
        await resumed.until(() => first.length + resumed.messages.length >= all.length, 20_000);
        await new Promise((r) => setTimeout(r, 200));
        expect([...first, ...resumed.messages.map((m) => m.data.taskUpdated.id)]).toEqual(all);
        resumed.unsubscribe();
      } finally {
        await small.stop();
      }
    },
  );

  it('loses and repeats nothing when an event lands while a resuming subscription replays the history', { timeout: 60_000 }, async () => {
    // The replay's read of the history is held until the test lets it go, so the event is written
    // exactly in the switch from replay to live, every run.
    let hold: { reached: () => void; released: Promise<void> } | undefined;
    const prisma = database.db.prisma.$extends({
      query: {
        async $queryRaw({ args, query }) {
          // The history read of a subscription to one task (the feed reads every task's).
          const replay = (args as unknown as { strings?: string[] }).strings?.some((part) => part.includes('e."taskId" ='));
          if (replay && hold) {
            const { reached, released } = hold;
            hold = undefined;
            reached();
            await released;
          }
          return query(args);
        },
      },
    }) as unknown as typeof database.db.prisma;
    const hooked = await startTestServer({ ...database, db: { ...database.db, prisma } });
    try {
      const id = (await hooked.ok(`mutation { createTask(input: { name: "raced" }) { id } }`)).createTask.id as string;
      const lease = (await hooked.ok(`mutation($id: ID!) { startTask(id: $id, workerId: "w") { leaseToken } }`, { id })).startTask.leaseToken as string;
      // A new message each time: the history keeps every change of message (progress alone is sampled).
      const report = (p: number) =>
        hooked.ok(`mutation($id: ID!, $l: String!, $p: Float, $m: String) { reportProgress(id: $id, leaseToken: $l, progress: $p, message: $m) { id } }`, {
          id,
          l: lease,
          p,
          m: `at ${p}`,
        });
      const [created] = (await hooked.ok(`query($id: ID!) { taskEvents(taskId: $id) { id } }`, { id })).taskEvents;

      // A live subscriber on the same instance shows when the feed has published the racing event.
      const live = subscribe(hooked, 'subscription { taskUpdated { id progress } }');
      await live.ready();
      let reached!: () => void;
      const replaying = new Promise<void>((resolve) => (reached = resolve));
      let release!: () => void;
      hold = { reached, released: new Promise<void>((resolve) => (release = resolve)) };
      const resumed = subscribe(hooked, 'subscription($id: ID, $after: ID) { taskUpdated(id: $id, afterEventId: $after) { id type progress } }', {
        id,
        after: created.id,
      });
      await replaying; // it has joined the feed and is reading the history
      await report(10);
      await live.until(() => live.messages.some((m) => m.data.taskUpdated.progress === 10));
      release();
      await report(20);
      await resumed.until(() => resumed.messages.length >= 3);
      await new Promise((r) => setTimeout(r, 300));
      const history = (
        await hooked.ok(`query($id: ID!, $after: ID) { taskEvents(taskId: $id, afterEventId: $after) { id type progress } }`, { id, after: created.id })
      ).taskEvents;
      expect(history.map((e: any) => [e.type, e.progress])).toEqual([
        ['STARTED', 0],
        ['PROGRESS', 10],
        ['PROGRESS', 20],
      ]);
      expect(resumed.messages.map((m) => m.data.taskUpdated)).toEqual(history);
      resumed.unsubscribe();
      live.unsubscribe();
    } finally {
      await hooked.stop();
    }
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
