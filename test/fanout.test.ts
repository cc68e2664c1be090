import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from './support/databases.js';
import { until } from './support/receiver.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Issue 12, item 6: an event is resolved once per distinct subscription, not once per subscriber. */

const secrets = { ann: 'ann-viewer-secret-0001', bob: 'bob-viewer-secret-0002', ops: 'ops-operator-secret-03' };

// Task.events on the live task reads the history (readTaskHistories, one statement per execution):
// counting those statements counts how often the selection set was resolved.
const DOCUMENT = 'subscription($id: ID!, $kinds: [String!]) { taskUpdated(id: $id, kinds: $kinds) { progress task { events(first: 5) { type } } } }';
const isHistoryRead = (sql: string) => sql.includes('unnest(') && sql.includes('"TaskEvent"');

describeEachDatabase('fan-out [%s]', (kind) => {
  let database: TestDatabase;
  let server: TestServer;
  let historyReads = 0;
  const clients: Client[] = [];

  beforeAll(async () => {
    database = await openTestDatabase(kind, { onQuery: (sql) => void (isHistoryRead(sql) && historyReads++) });
    server = await startTestServer(database, { TASKWARDEN_TOKENS: `ann:viewer:${secrets.ann},bob:viewer:${secrets.bob},ops:operator:${secrets.ops}` });
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    await server.stop();
    await database.close();
  });

  function subscriber(token: string, variables: Record<string, unknown>) {
    const client = createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
    clients.push(client);
    const got: { progress: number; task: { events: { type: string }[] } }[] = [];
    const errors: unknown[] = [];
    client.subscribe(
      { query: DOCUMENT, variables },
      { next: (message) => void got.push((message.data as any).taskUpdated), error: (error) => void errors.push(error), complete: () => {} },
    );
    return { got, errors };
  }

  it('resolves each change once per distinct subscription (document, variables, role), however many subscribe', { timeout: 180_000 }, async () => {
    const { tasks } = server.taskwarden.services;
    const task = await tasks.create({ name: 'watched', kind: 'render' });
    const { leaseToken } = await tasks.start(task.id, 'w');
    const bus = server.taskwarden.services.bus;
    const openBefore = bus.openSubscriptions;

    // Three distinct subscriptions: two viewer tokens asking the same thing share one; an operator
    // token asks the same as its own; a viewer asking with other variables is one more.
    const same = [
      ...Array.from({ length: 12 }, () => subscriber(secrets.ann, { id: task.id })),
      ...Array.from({ length: 8 }, () => subscriber(secrets.bob, { id: task.id })),
    ];
    const operators = Array.from({ length: 5 }, () => subscriber(secrets.ops, { id: task.id }));
    const filtered = Array.from({ length: 5 }, () => subscriber(secrets.ann, { id: task.id, kinds: ['render'] }));
    const everyone = [...same, ...operators, ...filtered];
    await until(() => bus.openSubscriptions - openBefore >= everyone.length, 60_000).catch(() => {
      throw new Error(
        `${bus.openSubscriptions - openBefore} of ${everyone.length} subscriptions open; errors ${JSON.stringify(everyone.flatMap((s) => s.errors))}`,
      );
    });

    const readsBefore = historyReads;
    const changes = [10, 20, 30];
    for (const [i, progress] of changes.entries()) {
      await tasks.reportProgress(task.id, leaseToken, { progress }, null);
      await until(() => everyone.every((s) => s.got.length === i + 1), 60_000).catch(() => {
        throw new Error(
          `after change ${i + 1}: got ${JSON.stringify(everyone.map((s) => s.got.length))}, errors ${JSON.stringify(everyone.flatMap((s) => s.errors))}`,
        );
      });
    }
    // Three distinct subscriptions, three changes: nine executions, not one per subscriber (90).
    expect(historyReads - readsBefore).toBe(changes.length * 3);
    for (const s of everyone) {
      expect(s.errors).toEqual([]);
      expect(s.got.map((e) => e.progress)).toEqual(changes);
      expect(s.got.at(-1)!.task.events.map((e) => e.type)).toEqual(['CREATED', 'STARTED', 'PROGRESS']); // the first report is kept, the others sampled out
    }
  });
});
