import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/open.js';
import { recordChange } from '../src/tasks/sql/record-change.js';
import { pickById } from '../src/tasks/sql/pick-by-id.js';
import { updateTask } from '../src/tasks/sql/update-task.js';
import { Prisma } from '../src/generated/prisma/client.js';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { startTestServer, type TestServer, useTestServer } from './support/server.js';

// Issue 21: a client that resumes taskUpdated from the id of the last event it received gets
// every committed event after it exactly once, in one order, on Postgres with concurrent writers.

const UPDATES = `subscription($after: ID) { taskUpdated(afterEventId: $after) { id taskId type progress } }`;

interface Received {
  id: string;
  taskId: string;
  type: string;
}

/** A client that keeps the id of the last event it received and resumes from it, as the dashboard and the CLI do. */
function resumingClient(servers: () => TestServer[]) {
  const received: Received[] = [];
  const errors: unknown[] = [];
  let client: Client | undefined;
  let stop: (() => void) | undefined;
  let turn = 0;
  let resumes = 0;
  let start: string | undefined;
  const last = () => received.at(-1)?.id ?? start;
  return {
    received,
    errors,
    get resumes() {
      return resumes;
    },
    /** Connects (to the next server in turn) and subscribes after the last event received, or after `from`. */
    connect(from?: string) {
      start ??= from;
      const all = servers();
      client = all[turn++ % all.length]!.ws();
      stop = client.subscribe<{ taskUpdated: Received }>(
        { query: UPDATES, variables: { after: last() } },
        {
          next: (message) => (message.data ? received.push(message.data.taskUpdated) : errors.push(message.errors)),
          // A closed socket is a disconnect, which the next resume makes good; anything else is an error.
          error: (error) => typeof (error as { code?: unknown }).code !== 'number' && errors.push(error),
          complete: () => {},
        },
      );
    },
    /** Drops the connection (the socket closes, nothing said), then resumes. */
    async reconnect() {
      stop?.();
      await client?.dispose();
      resumes++;
      this.connect();
    },
    async close() {
      stop?.();
      await client?.dispose();
    },
  };
}

/** Every settled history entry after `after`, through the API, in its order. */
async function history(server: TestServer, after: string | undefined): Promise<Received[]> {
  const all: Received[] = [];
  for (let cursor = after; ;) {
    const page = (await server.ok(`query($after: ID) { taskEvents(afterEventId: $after, first: 500) { id taskId type } }`, { after: cursor }))
      .taskEvents as Received[];
    all.push(...page);
    if (page.length < 500) return all;
    cursor = page.at(-1)!.id;
  }
}

/** What the client got, against the history: the issue's table. */
function compare(expected: Received[], received: Received[]) {
  const want = expected.map((e) => e.id);
  const got = received.map((e) => e.id);
  const wanted = new Set(want);
  const gotSet = new Set(got);
  const position = new Map(want.map((id, i) => [id, i]));
  let outOfOrder = 0;
  for (let i = 1; i < got.length; i++) if ((position.get(got[i]!) ?? -1) < (position.get(got[i - 1]!) ?? -1)) outOfOrder++;
  return {
    inRange: want.length,
    received: got.length,
    missing: want.filter((id) => !gotSet.has(id)).length,
    duplicates: got.length - gotSet.size,
    unexpected: got.filter((id) => !wanted.has(id)).length,
    outOfOrder,
  };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The issue's scenario: `writers` running tasks report progress as fast as they can (spread over
 * the servers), while one client drops its connection and resumes from its last event `resumes`
 * times, each time on the next server. Returns the comparison with the history.
 */
async function resumeUnderLoad(
  servers: () => TestServer[],
  options: { writers: number; resumes: number; everyMs: number; holdMs?: number; between?: (round: number) => Promise<void> },
) {
  const first = servers()[0]!;
  const leases = await Promise.all(
    Array.from({ length: options.writers }, async (_, i) => {
      const id = (await first.ok(`mutation($n: String!) { createTask(input: { name: $n }) { id } }`, { n: `writer ${i}` })).createTask.id as string;
      const lease = (await first.ok(`mutation($id: ID!) { startTask(id: $id, workerId: "w") { leaseToken } }`, { id })).startTask.leaseToken as string;
      return { id, lease };
    }),
  );
  const start = (await history(first, undefined)).at(-1)!.id;
  const client = resumingClient(servers);
  client.connect(start);
  let writing = true;
  let reports = 0;
  const writers = leases.map(async ({ id, lease }, w) => {
    for (let n = 1; writing; n++) {
      const all = servers();
      const server = all[(w + n) % all.length]!;
      // Straight to the services, as fast as the database takes them (HTTP on 2 shared cores would throttle
      // the writers). With `holdMs`, half the writers keep their transaction open a moment after writing, as a
      // sweep or a failure with its alerts does, so transactions commit in another order than their ids.
      const { tasks, commit } = server.taskwarden.services;
      const report = () =>
        options.holdMs && w % 2
          ? commit(async ({ db, changed }) => {
              const change = await recordChange(
                db,
                updateTask({ pick: pickById(id), guard: Prisma.sql`t."leaseToken" = ${lease}`, set: Prisma.sql`message = ${`step ${n}`}` }),
                { type: 'PROGRESS', at: new Date() },
              );
              await sleep(Math.random() * options.holdMs!);
              return changed(change!);
            })
          : tasks.reportProgress(id, lease, { message: `step ${n}` });
      // A server being restarted refuses for a moment; the writer carries on.
      const ok = await report().then(
        () => true,
        () => false,
      );
      if (ok) reports++;
      // PGlite answers in-process, without I/O: without a turn of the event loop here the writers
      // would starve every timer (the resumes, the test's own deadlines) and the test would spin.
      await new Promise((r) => setImmediate(r));
    }
  });
  try {
    for (let round = 0; round < options.resumes; round++) {
      await sleep(options.everyMs);
      await options.between?.(round);
      await client.reconnect();
    }
  } finally {
    writing = false;
    await Promise.all(writers);
  }
  const expected = await history(first, start);
  await until(
    () => client.received.length >= expected.length || client.errors.length > 0,
    `the client to catch up (${client.received.length} of ${expected.length}, errors ${JSON.stringify(client.errors)})`,
  );
  await sleep(200); // anything more would be a duplicate
  await client.close();
  return { ...compare(expected, client.received), reports, resumes: client.resumes, errors: client.errors };
}

describeEachDatabase('resuming taskUpdated [%s]', (kind) => {
  const database = useTestDatabase(kind);
  const server = useTestServer(database);

  it('gets every event after its cursor once, in the history order, across 15 resumes with 10 concurrent writers', async () => {
    // PGlite runs one transaction at a time: there, nobody holds one open.
    const result = await resumeUnderLoad(() => [server], { writers: 10, resumes: 15, everyMs: 600, holdMs: kind === 'postgres' ? 10 : 0 });
    console.log(`[${kind}] resume under load:`, JSON.stringify(result));
    expect(result.errors).toEqual([]);
    expect(result.resumes).toBeGreaterThanOrEqual(15);
    expect(result.inRange).toBeGreaterThan(100);
    expect(result).toMatchObject({ missing: 0, duplicates: 0, unexpected: 0, outOfOrder: 0 });
    expect(result.received).toBe(result.inRange);
  }, 120_000);

  it('refuses an event id from an older server with STALE_CURSOR, and junk with BAD_USER_INPUT', async () => {
    const client = server.ws();
    const errorOf = (after: string) =>
      new Promise<any>((resolve) =>
        client.subscribe(
          { query: UPDATES, variables: { after } },
          { next: (m) => resolve(m.errors?.[0]), error: (e) => resolve((e as any[])[0] ?? e), complete: () => {} },
        ),
      );
    const stale = await errorOf('1234');
    expect(stale.extensions.code).toBe('STALE_CURSOR');
    expect(stale.message).toMatch(/older Taskwarden.*Refetch/);
    expect((await errorOf('12.x')).extensions.code).toBe('BAD_USER_INPUT');
    const query = await server.gql(`query { taskEvents(afterEventId: "17") { id } }`);
    expect(query.errors?.[0]?.extensions?.code).toBe('STALE_CURSOR');
    // Digits past what a bigint holds are no cursor either (Postgres would fail the read).
    for (const junk of ['9223372036854775808.1', '1.9223372036854775808', '1.2.9999999999999999999', '1.2.3.4']) {
      expect((await errorOf(junk)).extensions.code).toBe('BAD_USER_INPUT');
      expect((await server.gql(`query { taskEvents(afterEventId: "${junk}") { id } }`)).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
    expect((await server.gql(`query { taskEvents(afterEventId: "9223372036854775807.1") { id } }`)).errors).toBeUndefined();
  });
});

describe.runIf(process.env.TEST_DATABASE_URL)('resuming taskUpdated while a transaction holds an earlier event [postgres]', () => {
  const database = useTestDatabase('postgres', { reset: false });
  const server = useTestServer(database);

  it('does not hand out a later event before an earlier one commits, and delivers the earlier one after a resume', async () => {
    const { tasks } = server.taskwarden.services;
    const prisma = server.taskwarden.db.prisma;
    const slow = await tasks.start((await tasks.create({ name: 'slow writer' })).id, 'w1');
    const fast = await tasks.start((await tasks.create({ name: 'fast writer' })).id, 'w2');
    const start = (await history(server, undefined)).at(-1)!.id;
    const client = resumingClient(() => [server]);
    client.connect(start);

    // The slow writer's transaction takes its event id, then stays open (as a sweep or a failure with its alerts does).
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let heldId: bigint | undefined;
    const slowWrite = server.taskwarden.services.commit(
      async ({ db, changed }) => {
        const change = await recordChange(
          db,
          updateTask({ pick: pickById(slow.task.id), guard: Prisma.sql`true`, set: Prisma.sql`progress = 50, message = 'held'` }),
          { type: 'PROGRESS', at: new Date() },
        );
        heldId = change!.event!.id;
        await released;
        return changed(change!);
      },
      { timeout: 60_000 },
    );
    await until(() => heldId !== undefined, 'the slow writer to take its id');
    // The fast writer takes a later id and commits first.
    await tasks.reportProgress(fast.task.id, fast.leaseToken, { progress: 10, message: 'committed first' });
    const fastId = (await prisma.taskEvent.findFirst({ where: { taskId: fast.task.id, type: 'PROGRESS' } }))!.id;
    expect(fastId).toBeGreaterThan(heldId!);

    // While the earlier one is open, the later one is not handed out, live or in the history...
    await sleep(500);
    expect(client.received).toEqual([]);
    expect(await history(server, start)).toEqual([]);
    // ...so a client that resumes at this moment resumes from before both.
    await client.reconnect();
    await sleep(200);
    expect(client.received).toEqual([]);

    release();
    await slowWrite; // published once it commits
    await until(() => client.received.length >= 2, 'both events');
    await sleep(200);
    expect(client.received.map((e) => [e.taskId, e.type])).toEqual([
      [slow.task.id, 'PROGRESS'],
      [fast.task.id, 'PROGRESS'],
    ]);
    expect(client.received.map((e) => e.id)).toEqual((await history(server, start)).map((e) => e.id));
    await client.close();
  }, 60_000);
});

describe.runIf(process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL)('resuming taskUpdated across instances and restarts [postgres + redis]', () => {
  const database = useTestDatabase('postgres', { reset: false });
  let servers: TestServer[];

  beforeAll(async () => {
    const env = { REDIS_URL: process.env.TEST_REDIS_URL! };
    const second = await openDatabase(database.target, { migrate: true });
    servers = [await startTestServer(database, env), await startTestServer({ ...database, db: second }, env)];
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await servers[1]!.taskwarden.db.close();
  });

  it('gets every event once, in order, resuming on the other instance each time and across a restart of one', async () => {
    const env = { REDIS_URL: process.env.TEST_REDIS_URL! };
    const result = await resumeUnderLoad(() => servers, {
      writers: 10,
      resumes: 16,
      everyMs: 600,
      holdMs: 10,
      between: async (round) => {
        if (round !== 7) return;
        // The second instance restarts on the same database (its writes in flight fail; the client resumes elsewhere, then on it).
        const [first, second] = servers as [TestServer, TestServer];
        const port = new URL(second.url).port;
        servers = [first];
        await second.stop();
        servers = [first, await startTestServer({ ...database, db: second.taskwarden.db }, { ...env, PORT: port })];
      },
    });
    console.log('[postgres + redis] resume across instances:', JSON.stringify(result));
    expect(result.errors).toEqual([]);
    expect(result.inRange).toBeGreaterThan(100);
    expect(result).toMatchObject({ missing: 0, duplicates: 0, unexpected: 0, outOfOrder: 0 });
  }, 120_000);
});
