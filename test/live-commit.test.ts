import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeEachDatabase, useTestDatabase } from './support/databases.js';
import { until } from './support/receiver.js';
import { subscribedInRedis } from './support/redis.js';
import { startTestServer, useTestServer } from './support/server.js';

const root = fileURLToPath(new URL('..', import.meta.url));

// Live events survive the instance that made them: a write whose instance never publishes it (it died
// between its commit and its publish) still reaches every subscriber, because each instance's event
// feed reads the history itself (src/tasks/feed.ts) and the publish only wakes it sooner.
describeEachDatabase('live events after a writer that never published [%s]', (kind) => {
  const database = useTestDatabase(kind, { reset: false });
  const server = useTestServer(database, kind === 'postgres' && process.env.TEST_REDIS_URL ? { REDIS_URL: process.env.TEST_REDIS_URL } : {}, {
    realTime: true,
  });

  function follow() {
    const heard: { type: string; taskId: string; status: string | null }[] = [];
    const client = server.ws();
    client.subscribe(
      { query: 'subscription { taskUpdated { type taskId task { status } } }' },
      {
        next: (m: any) =>
          void heard.push({ type: m.data.taskUpdated.type, taskId: m.data.taskUpdated.taskId, status: m.data.taskUpdated.task?.status ?? null }),
        error: () => {},
        complete: () => {},
      },
    );
    return heard;
  }
  const subscribed = async () => {
    await until(() => server.taskwarden.services.bus.subscriberCount('task:settled') > 0);
    if (kind === 'postgres' && process.env.TEST_REDIS_URL) await subscribedInRedis('taskwarden:task:updated');
  };

  if (kind === 'postgres') {
    it('delivers writes whose instance was killed between commit and publish', { timeout: 90_000 }, async () => {
      const heard = follow();
      await subscribed();
      const die = (env: Record<string, string>) =>
        new Promise<string>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/die-before-publish.ts'], {
            cwd: root,
            env: { ...process.env, DATABASE_URL: (database.target as { url: string }).url, REDIS_URL: process.env.TEST_REDIS_URL ?? '', ...env },
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          child.stdout.on('data', (chunk) => (out += chunk));
          child.on('exit', (_code, signal) => {
            const id = /committed (\S+)/.exec(out)?.[1];
            if (signal === 'SIGKILL' && id) resolve(id);
            else reject(new Error(`the writer did not die after its commit (${signal}): ${out}`));
          });
        });
      const id = await die({ WRITE: 'create' });
      await die({ WRITE: 'start', TASK_ID: id });
      // The killed writers' publishes never happened; the feed's read of the history carries both.
      await until(() => heard.length === 2, 15_000);
      expect(heard).toEqual([
        { type: 'CREATED', taskId: id, status: expect.any(String) },
        { type: 'STARTED', taskId: id, status: 'RUNNING' },
      ]);
    });
  } else {
    it('delivers writes made through an instance whose publishes never reach this one', async () => {
      // A second instance on the same embedded database with a bus of its own: as if it died after each commit.
      const second = await startTestServer(database, {}, { realTime: true });
      try {
        const heard = follow();
        await subscribed();
        const id = (await second.ok(`mutation { createTask(input: { name: "unpublished" }) { id } }`)).createTask.id;
        await second.ok(`mutation($id: ID!) { startTask(id: $id, workerId: "w") { leaseToken } }`, { id });
        await until(() => heard.length === 2, 15_000);
        expect(heard).toEqual([
          { type: 'CREATED', taskId: id, status: expect.any(String) },
          { type: 'STARTED', taskId: id, status: 'RUNNING' },
        ]);
      } finally {
        await second.stop();
      }
    });
  }
});
