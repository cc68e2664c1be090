import { expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTaskwardenClient, type TaskUpdatedSubscription } from '../src/client/index.js';
import { followTaskUpdates } from '../src/client/follow.js';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { startTestServer, useTestServer, type TestServer } from './support/server.js';
import { useTaskHarness } from './support/tasks.js';

type Event = TaskUpdatedSubscription['taskUpdated'];

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A describe's server, with a buffer of 2: a burst of entries read at once overflows any live stream. */
function useFollowing(kind: 'pglite' | 'postgres') {
  const database = useTestDatabase(kind, { reset: false });
  const server = useTestServer(database, { SUBSCRIPTION_BUFFER: '2' });
  return {
    database,
    server,
    // Writes of another process: its own bus, so the server hears of them only by reading the history.
    elsewhere: useTaskHarness(database),
    /** Every history entry, in order, as taskEvents lists it. */
    history: async (client: ReturnType<typeof createTaskwardenClient>) => (await client.events({ first: 1000 })).map((e) => e.id),
  };
}

// client.followTaskUpdates: the resumable taskUpdated stream the CLI, the dashboard and the worker SDK share.
describeEachDatabase('following task updates through an overflow [%s]', (kind) => {
  const { server, elsewhere, history } = useFollowing(kind);

  it('resumes after SUBSCRIPTION_OVERFLOW from the last entry it delivered: every entry once, in order', async () => {
    const client = createTaskwardenClient({ url: server.url, webSocketImpl: WebSocket });
    const received: Event[] = [];
    let opened = 0;
    // The client's own subscription, counted: how many times the stream was opened.
    const stop = followTaskUpdates<Event>(
      {
        taskUpdated: (filter, sink) => {
          opened++;
          return client.onTaskUpdated(filter, sink);
        },
        onConnection: client.onConnection,
      },
      {},
      { next: (event) => received.push(event), error: (error) => expect.fail(error.message) },
    );
    try {
      await until(() => server.taskwarden.services.bus.subscriberCount('task:settled') > 0, 'the subscription');
      const task = await client.createTask({ name: 'first' });
      await until(() => received.length === 1, 'the first entry');
      // Thirty entries in one burst: the server's feed reads them in one page and overflows the stream.
      for (let i = 0; i < 30; i++) await elsewhere.tasks.create({ name: `burst ${i}` });
      await client.stopTask(task.id, 'after the burst');
      const all = await history(client);
      expect(all).toHaveLength(32);
      await until(() => received.length >= all.length, `${all.length} entries (got ${received.length})`);
      expect(opened).toBeGreaterThan(1);
      expect(received.map((e) => e.id)).toEqual(all);
    } finally {
      stop();
      await client.close();
    }
  });
});

describeEachDatabase('following task updates through a reconnect [%s]', (kind) => {
  const { database, server, elsewhere, history } = useFollowing(kind);

  it('resumes after the connection drops: what happened while away once each, then live', async () => {
    const client = createTaskwardenClient({ url: server.url, webSocketImpl: WebSocket });
    const received: Event[] = [];
    const stop = client.followTaskUpdates({}, { next: (event) => received.push(event), error: (error) => expect.fail(error.message) });
    // The server back on the same port; stopped here, the describe's own one having stopped already.
    let restarted: TestServer | undefined;
    try {
      await until(() => server.taskwarden.services.bus.subscriberCount('task:settled') > 0, 'the subscription');
      const task = await client.createTask({ name: 'before' });
      await until(() => received.length === 1, `the entry before the drop (got ${JSON.stringify(received.map((e) => e.type))})`);

      const port = new URL(server.url).port;
      await server.stop();
      for (const n of [1, 2, 3]) await elsewhere.tasks.create({ name: `while away ${n}` });
      restarted = await startTestServer(database, { PORT: port, SUBSCRIPTION_BUFFER: '2' });

      await until(() => received.length >= 4, 'the entries made while away');
      await client.stopTask(task.id, 'after');
      const all = await history(client);
      await until(() => received.length >= all.length, `${all.length} entries (got ${received.length})`);
      expect(received.map((e) => e.id)).toEqual(all);
      expect(received.map((e) => e.task?.name ?? null)).toEqual(['before', 'while away 1', 'while away 2', 'while away 3', 'before']);
    } finally {
      stop();
      await client.close();
      await restarted?.stop();
    }
  });
});
