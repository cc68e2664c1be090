import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TaskChange } from '../src/tasks/model.js';
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
      // (On a shared PostgreSQL server an open transaction anywhere may hold a kept entry back a while.)
      await until(() => got.length === 1, 60_000);

      const changes = Array.from({ length: 20 }, (_, i) => 2 + i);
      const readsBefore = feedReads;
      const started = Date.now();
      for (const progress of changes) {
        await tasks.reportProgress(task.id, leaseToken, { progress }, null);
        await until(() => got.at(-1) === progress, 60_000);
      }
      const elapsedMs = Date.now() - started;
      expect(got).toEqual([1, ...changes]);
      // Without the pass-through each report waits for a read of its own (20 reads); now only the
      // feed's backstop poll (once a second) reads while these go by.
      expect(feedReads - readsBefore).toBeLessThanOrEqual(Math.ceil(elapsedMs / 1000) + 1);
      expect(feedReads - readsBefore).toBeLessThan(changes.length);
    },
  );

  it('passes transitions and kept progress entries straight through when their writer proved nothing can come between', { timeout: 120_000 }, async () => {
    const { tasks, bus } = server.taskwarden.services;
    const got: string[] = [];
    const subscribedBefore = bus.subscriberCount('task:settled');
    server.ws().subscribe(
      { query: 'subscription { taskUpdated(kinds: ["chain"]) { type message } }' },
      {
        next: (m: any) => void got.push(`${m.data.taskUpdated.type} ${m.data.taskUpdated.message ?? ''}`.trim()),
        error: (error) => void got.push(`error ${JSON.stringify(error)}`),
        complete: () => {},
      },
    );
    await until(() => bus.subscriberCount('task:settled') > subscribedBefore);
    const expected: string[] = [];
    const readsBefore = feedReads;
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      const task = await tasks.create({ name: `chain ${i}`, kind: 'chain' });
      const { leaseToken } = await tasks.start(task.id, 'w');
      // A new message is always kept in the history: an entry, not a live-only report.
      await tasks.reportProgress(task.id, leaseToken, { progress: 50, message: `phase ${i}` }, null);
      await tasks.complete(task.id, leaseToken, null, null);
      expected.push('CREATED', 'STARTED', `PROGRESS phase ${i}`, `COMPLETED phase ${i}`);
      await until(() => got.length === expected.length, 60_000).catch(() => {
        throw new Error(`got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
      });
    }
    expect(got).toEqual(expected);
    // On PGlite nothing else ever runs beside a statement, so every writer proves its place: the
    // 20 entries need no read beyond the backstop poll. (On a shared PostgreSQL server any open
    // transaction, in any database, withholds the proof; those entries are read as before.)
    if (kind === 'pglite') expect(feedReads - readsBefore).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 1000) + 1);
  });

  if (kind === 'postgres') {
    it('proves nothing while an older transaction is still open, so the feed reads to keep the order', { timeout: 60_000 }, async () => {
      const { tasks, bus } = server.taskwarden.services;
      const published: TaskChange[] = [];
      const stop = bus.listen('task:updated', (change) => void published.push(change));
      const older = new pg.Client({ connectionString: (database.target as { url: string }).url });
      await older.connect();
      try {
        await older.query('BEGIN');
        await older.query('SELECT pg_current_xact_id()'); // holds an id older than the writes below
        const task = await tasks.create({ name: 'behind an open transaction' });
        await tasks.start(task.id, 'w');
        expect(published.filter((c) => c.event.taskId === task.id).map((c) => c.event.type)).toEqual(['CREATED', 'STARTED']);
        // Something might still commit before these entries: no writer may claim its place.
        expect(published.filter((c) => c.event.taskId === task.id && c.previous)).toEqual([]);
      } finally {
        await older.query('ROLLBACK').catch(() => {});
        await older.end();
        stop();
      }
    });
  }
});
