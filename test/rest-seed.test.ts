import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/open.js';
import { TaskStatus } from '../src/tasks/model.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from './support/databases.js';
import { spawnServer, type ServerProcess } from './support/process.js';
import { taskHarness, taskIn } from './support/tasks.js';

const run = promisify(execFile);

/**
 * The seed's "使用API接口" section, verbatim. The seed hard-codes its server as
 * http://localhost:8000; the test points that at the server it started (the
 * only change it makes) and runs each line with sh, curl's URL globbing
 * included.
 */
const SEED_CURL_LINES = [
  'curl "http://localhost:8000/api/v1/tasks/monitor/stuck?timeout_minutes=30"',
  'curl -X POST "http://localhost:8000/api/v1/tasks/monitor/cleanup?timeout_minutes=30&auto_fix=true"',
  'curl -X POST "http://localhost:8000/api/v1/tasks/monitor/force-complete/{task_id}?status=cancelled"',
  'curl "http://localhost:8000/api/v1/tasks/monitor/statistics"',
] as const;
const SEED = '/work/shared/seed/000_b52c9fd3f17cc05e.txt';

describeEachDatabase("the seed's curl lines against a started server [%s]", (kind) => {
  let database: TestDatabase | undefined;
  let dataDir: string | undefined;
  let server: ServerProcess;
  let stuckId: string;
  let runningId: string;

  const curl = async (line: string) => {
    const { stdout } = await run('sh', ['-c', `${line.replaceAll('http://localhost:8000', new URL(server.url).origin)} --silent --show-error`]);
    return JSON.parse(stdout);
  };

  beforeAll(async () => {
    // Tasks from before the server starts: one whose worker went silent months ago, one started just now.
    let db: Database;
    let env: Record<string, string>;
    if (kind === 'postgres') {
      database = await openTestDatabase('postgres');
      db = database.db;
      env = { DATABASE_URL: (database.target as { url: string }).url };
    } else {
      dataDir = mkdtempSync(join(tmpdir(), 'taskwarden-seed-'));
      db = await openDatabase({ dataDir });
      env = { DATA_DIR: dataDir };
    }
    const { tasks, clock } = taskHarness({ db } as TestDatabase);
    stuckId = (await taskIn(tasks, TaskStatus.RUNNING, 'Backtest stuck at 90%')).task.id;
    clock.set(new Date());
    runningId = (await taskIn(tasks, TaskStatus.RUNNING, 'Backtest running now')).task.id;
    if (!database) await db.close();
    server = await spawnServer(env);
  }, 120_000);
  afterAll(async () => {
    server?.child.kill('SIGTERM');
    await server?.exited;
    await database?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps the lines exactly as the seed writes them', () => {
    if (!existsSync(SEED)) return; // the seed lives beside the repository, not in it
    const seed = readFileSync(SEED, 'utf8');
    for (const line of SEED_CURL_LINES) expect(seed).toContain(line);
  });

  it('runs them: stuck, cleanup, force-complete (a template until a task id is put in) and statistics', async () => {
    const [stuck, cleanup, force, statistics] = SEED_CURL_LINES;

    const listed = await curl(stuck);
    expect(listed).toMatchObject({ timeout_minutes: 30, count: 1, tasks: [{ id: stuckId, status: 'running', stuck_reason: 'no_heartbeat' }] });

    const cleaned = await curl(cleanup);
    expect(cleaned).toMatchObject({ auto_fix: true, action: 'cancel', found: [{ id: stuckId }], fixed: [{ id: stuckId, status: 'cancelled' }] });
    expect((await curl(stuck)).count).toBe(0);

    // Verbatim, curl sends the placeholder itself ({task_id} is a one-word curl glob): a malformed id.
    expect(await curl(force)).toMatchObject({ error: { code: 'BAD_USER_INPUT', field: 'task_id' } });
    expect(await curl(force.replace('{task_id}', runningId))).toMatchObject({ id: runningId, status: 'cancelled' });

    expect(await curl(statistics)).toMatchObject({
      total: 2,
      running: 0,
      cancelled: 2,
      stuck: 0,
      success_rate: 0,
      monitor: { enabled: true, timeout_minutes: 60, action: 'cancel' },
    });
  });
});
