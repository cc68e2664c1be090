import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from './support/databases.js';
import { until } from './support/receiver.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Issue 12: a report reaches subscribers straight after its commit, without a read of the history on the way. */

// The event feed's read of the history (sql/event-log.ts readEvents).
const isFeedRead = (sql: string) => sql.includes('CROSS JOIN LATERAL') && sql.includes('"TaskEvent"');

describeEachDatabase('report to subscriber [%s]', (kind) => {
  let database: TestDatabase;
  let server: TestServer;
  let feedReads = 0;

  beforeAll(async () => {
    database = await openTestDatabase(kind, { onQuery: (sql) => void (isFeedRead(sql) && feedReads++) });
    server = await startTestServer(database, {}, { realTime: true });
  });
  afterAll(async () => {
    await server.stop();
    await database.close();
  });

  it(
    'passes reports that follow what the feed published straight to subscribers, reading the history only on its slow poll',
    { timeout: 120_000 },
    async () => {
      const { tasks, bus } = server.taskwarden.services;
      const task = await tasks.create({ name: 'reporting', kind: 'render' });
      const { leaseToken } = await tasks.start(task.id, 'w');
      const got: number[] = [];
      server
        .ws()
        .subscribe(
          { query: 'subscription($id: ID!) { taskUpdated(id: $id) { progress } }', variables: { id: task.id } },
          { next: (m: any) => void got.push(m.data.taskUpdated.progress), error: () => {}, complete: () => {} },
        );
      await until(() => bus.subscriberCount('task:settled') > 0);
      // The first report is kept in the history (an entry, read and published by the feed); the rest are sampled out.
      await tasks.reportProgress(task.id, leaseToken, { progress: 1 }, null);
      await until(() => got.length === 1);

      const changes = Array.from({ length: 20 }, (_, i) => 2 + i);
      const readsBefore = feedReads;
      const started = Date.now();
      for (const progress of changes) {
        await tasks.reportProgress(task.id, leaseToken, { progress }, null);
        await until(() => got.at(-1) === progress, 10_000);
      }
      const elapsedMs = Date.now() - started;
      expect(got).toEqual([1, ...changes]);
      // Without the pass-through each report waits for a read of its own (20 reads); now only the
      // feed's backstop poll (once a second) reads while these go by.
      expect(feedReads - readsBefore).toBeLessThanOrEqual(Math.ceil(elapsedMs / 1000) + 1);
      expect(feedReads - readsBefore).toBeLessThan(changes.length);
    },
  );
});
