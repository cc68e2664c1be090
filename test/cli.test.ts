import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTaskwardenClient, type TaskwardenClient } from '../src/client/client.js';
import { openDatabase } from '../src/db/open.js';
import { createProgram } from '../src/cli/program.js';
import { openTestDatabase, type TestDatabase } from './support/databases.js';
import { spawnServer } from './support/process.js';
import { startTestServer, type TestServer } from './support/server.js';

// The real binary (bin/taskwarden.js), as a child process, against a real server on port 0.

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'taskwarden.js');
const MINUTE = 60_000;

let database: TestDatabase;
let server: TestServer;
let client: TaskwardenClient;
const dirs: string[] = [];

beforeAll(async () => {
  database = await openTestDatabase('pglite');
  server = await startTestServer(database);
  client = createTaskwardenClient({ url: server.url });
});
afterAll(async () => {
  await server?.stop();
  await database?.close();
  dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
});
beforeEach(() => database.reset());

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cliEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  // No database settings leak in from the environment (or a developer's .env): tests that want one say so.
  return { ...process.env, NO_COLOR: '1', TASKWARDEN_URL: server.url, DATABASE_URL: '', DATA_DIR: '', ...env };
}

function launch(args: string[], env?: Record<string, string>): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [bin, ...args], { cwd: root, env: cliEnv(env), stdio: 'pipe' });
}

/** Runs `taskwarden ...args` to the end; `input` is what the operator types. */
function taskwarden(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = launch(args, options.env);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running `taskwarden ...args` (watch), read line by line. */
function follow(args: string[]) {
  const child = launch(args);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const lines = () => stdout.split('\n').filter(Boolean);
  return {
    child,
    exited,
    lines,
    json: () => lines().map((line) => JSON.parse(line) as Record<string, any>),
    async waitFor(predicate: (line: string) => boolean, what: string) {
      await until(() => lines().some(predicate), `${what}; stdout so far:\n${stdout}\nstderr:\n${stderr}`);
    },
  };
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A URL where nothing listens. */
async function downUrl(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return `http://127.0.0.1:${port}/graphql`;
}

function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'taskwarden-cli-'));
  dirs.push(dir);
  return dir;
}

async function runningTask(name: string, report: { progress?: number; message?: string } = {}) {
  const { id } = await client.createTask({ name });
  const { leaseToken } = await client.startTask(id, 'worker-1');
  if (report.progress !== undefined || report.message !== undefined) await client.reportProgress(id, leaseToken, report);
  return { id, leaseToken };
}

const parse = (run: Run) => JSON.parse(run.stdout) as Record<string, any>;
const oneLine = (text: string) => expect(text.trimEnd().split('\n')).toHaveLength(1);
const lastEvent = async (id: string) => (await client.getTask(id))!.events.at(-1)!;

describe('taskwarden, the operator CLI', () => {
  it('list: a table with progress, run time, last heartbeat and a stuck marker; --json with the API task fields', async () => {
    const stuck = await runningTask('SMA cross AAPL 2015-2024', { progress: 42, message: 'simulating trades' });
    const pending = await client.createTask({ name: 'Pairs SPY-QQQ 2018-2022' });
    server.clock.advance(61 * MINUTE); // past the server's 60-minute stuck timeout

    const [table, json, limited, byKind] = await Promise.all([
      taskwarden(['list']),
      taskwarden(['list', '--status', 'running', '--json']),
      taskwarden(['list', '--limit', '1']),
      taskwarden(['list', '--kind', 'other', '--json']),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/│ id\s+│ name\s+│ status\s+│ priority │ run at │ progress │ run time │ last heartbeat │ stuck\s+│ waiting for │/);
    expect(table.stdout).toMatch(
      new RegExp(`│ ${stuck.id} │ SMA cross AAPL 2015-2024\\s+│ RUNNING\\s+│ 0\\s+│ -\\s+│ 42%\\s+│ 1h 01m\\s+│ [\\dms ]+ago\\s+│ NO_HEARTBEAT │\\s+│`),
    );
    expect(table.stdout).toMatch(new RegExp(`│ ${pending.id} │ Pairs SPY-QQQ 2018-2022\\s+│ PENDING\\s+│ 0\\s+│ -\\s+│ 0%\\s+│ -\\s+│ -\\s+│\\s+│\\s+│`));
    expect(table.stdout).toContain('2 tasks.');

    expect(json.code).toBe(0);
    const listed = parse(json);
    expect(listed.totalCount).toBe(1);
    expect(listed.tasks).toHaveLength(1);
    expect(listed.tasks[0]).toMatchObject({
      id: stuck.id,
      status: 'RUNNING',
      progress: 42,
      message: 'simulating trades',
      isStuck: true,
      stuckReason: 'NO_HEARTBEAT',
    });

    expect(limited.stdout).toContain('Showing 1 of 2 tasks (--limit).');
    expect(parse(byKind)).toEqual({ totalCount: 0, tasks: [] });
  });

  it('stuck: the stuck tasks with their reason and how long, under the timeout given', async () => {
    const frozen = await runningTask('RSI mean-reversion BTC-USD', { progress: 90, message: 'saving results' });
    server.clock.advance(31 * MINUTE);

    const [table, json, longer, withUnit] = await Promise.all([
      taskwarden(['stuck']),
      taskwarden(['stuck', '--json']),
      taskwarden(['stuck', '--timeout', '45', '--json']),
      taskwarden(['stuck', '--timeout', '20m', '--json']),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`│ ${frozen.id} │ RSI mean-reversion BTC-USD │ 90%\\s+│ NO_HEARTBEAT │ 31m 00s\\s+│ worker-1 │ saving results │`));
    // No --timeout: judged as the monitor judges (a 2-minute heartbeat clock by default), not by a fixed 30 minutes.
    expect(table.stdout).toContain("1 stuck task (each task's own clocks and the monitor's).");

    const report = parse(json);
    expect(report.timeoutMinutes).toBeNull();
    expect(report.tasks).toHaveLength(1);
    expect(report.tasks[0]).toMatchObject({ id: frozen.id, stuckReason: 'NO_HEARTBEAT', stuckForSeconds: 31 * 60 });
    expect(parse(longer)).toEqual({ timeoutMinutes: 45, tasks: [] });
    expect(parse(withUnit).timeoutMinutes).toBe(20);

    // A worker silent for 5 minutes is past the 2-minute heartbeat clock: stuck for the monitor, and so
    // for `stuck` without --timeout; the seed's 30-minute timeout does not see it yet.
    const quiet = await runningTask('Quiet for 5 minutes');
    server.clock.advance(5 * MINUTE);
    const [byClocks, byThirty] = await Promise.all([taskwarden(['stuck', '--json']), taskwarden(['stuck', '--timeout', '30', '--json'])]);
    expect(parse(byClocks).tasks.map((t: { id: string }) => t.id)).toContain(quiet.id);
    expect(parse(byThirty).tasks.map((t: { id: string }) => t.id)).not.toContain(quiet.id);
  });

  it('stop, force and delete: what the server did, or its refusal with exit code 1', async () => {
    const pending = await client.createTask({ name: 'Pending backtest' });
    const wrong = await runningTask('Wrong parameters');
    const lost = await runningTask('Worker host lost');
    const frozen = await runningTask('Frozen at 90%');
    const unknown = '00000000-0000-4000-8000-000000000000';

    const [stop, stopJson, refused, refusedJson, forceJson, missing, missingJson] = await Promise.all([
      taskwarden(['stop', '--task-id', pending.id]),
      taskwarden(['stop', '--task-id', wrong.id, '--reason', 'wrong parameters', '--json']),
      taskwarden(['delete', '--task-id', lost.id]),
      taskwarden(['delete', '--task-id', lost.id, '--json']),
      taskwarden(['force', '--task-id', frozen.id, '--json']),
      taskwarden(['stop', '--task-id', unknown]),
      taskwarden(['force', '--task-id', unknown, '--json']),
    ]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toBe(`Stopped "Pending backtest" (${pending.id}): it is CANCELLED now.\n`);
    expect(stopJson.code).toBe(0);
    expect(parse(stopJson).task).toMatchObject({ id: wrong.id, status: 'CANCELLED' });
    expect(await lastEvent(wrong.id)).toMatchObject({ type: 'CANCELLED', actor: 'operator', reason: 'wrong parameters' });

    // Deleting a running task: the server's explanation, one line, exit 1, nothing deleted.
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe(`taskwarden: Task ${lost.id} is RUNNING: stop or force-complete it first, then delete it.\n`);
    expect(refusedJson.code).toBe(1);
    expect(refusedJson.stdout).toBe('');
    expect(JSON.parse(refusedJson.stderr)).toEqual({
      error: { code: 'TASK_NOT_TERMINAL', message: `Task ${lost.id} is RUNNING: stop or force-complete it first, then delete it.` },
    });
    expect(parse(forceJson).task).toMatchObject({ id: frozen.id, status: 'CANCELLED' });

    // An unknown id.
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`taskwarden: Task ${unknown} does not exist.\n`);
    expect(missingJson.code).toBe(1);
    expect(JSON.parse(missingJson.stderr).error.code).toBe('NOT_FOUND');

    const [force, again] = await Promise.all([
      taskwarden(['force', '--task-id', lost.id, '--status', 'failed', '--reason', 'worker host lost']),
      taskwarden(['force', '--task-id', frozen.id]),
    ]);
    expect(force.code).toBe(0);
    expect(force.stdout).toBe(`Force-completed "Worker host lost" (${lost.id}): it is FAILED now.\n`);
    expect(await client.getTask(lost.id)).toMatchObject({ status: 'FAILED', error: 'worker host lost' });
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`taskwarden: Cannot force-complete task ${frozen.id}: it is CANCELLED.\n`);

    const [deleted, deletedJson] = await Promise.all([taskwarden(['delete', '--task-id', lost.id]), taskwarden(['delete', '--task-id', frozen.id, '--json'])]);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toBe(`Deleted ${lost.id}; its history is kept.\n`);
    expect(parse(deletedJson)).toEqual({ deleted: frozen.id });
    expect(await client.getTask(frozen.id)).toBeNull();
  });

  it('cleanup: reports what it would fix, and fixes it with --auto-fix', async () => {
    const stuck = await runningTask('Bollinger breakout NVDA');
    server.clock.advance(31 * MINUTE);

    const report = await taskwarden(['cleanup', '--timeout', '30']);
    expect(report.code).toBe(0);
    expect(report.stdout).toMatch(new RegExp(`│ ${stuck.id} │ Bollinger breakout NVDA │ 0%\\s+│ NO_HEARTBEAT │`));
    expect(report.stdout).toContain('Would fix 1 task (CANCEL). Run again with --auto-fix to do it.');
    expect((await client.getTask(stuck.id))?.status).toBe('RUNNING');

    const fixed = await taskwarden(['cleanup', '--timeout', '30', '--auto-fix', '--json']);
    expect(fixed.code).toBe(0);
    const json = parse(fixed);
    expect(json).toMatchObject({ autoFix: true, action: 'CANCEL', timeoutMinutes: 30 });
    expect(json.found.map((t: { id: string }) => t.id)).toEqual([stuck.id]);
    expect(json.fixed[0]).toMatchObject({ id: stuck.id, status: 'CANCELLED' });

    const nothing = await taskwarden(['cleanup', '--auto-fix']);
    expect(nothing.stdout).toBe("No stuck tasks (each task's own clocks and the monitor's): nothing to fix.\n");
  });

  it("stats: counts by status, success rate, average duration, stuck count and the monitor's last sweep", async () => {
    const done = await runningTask('Completed one');
    await client.completeTask(done.id, done.leaseToken, { sharpe: 1.2 });
    const failed = await runningTask('Failed one');
    await client.failTask(failed.id, failed.leaseToken, 'division by zero');
    await client.runMonitorSweep();
    await runningTask('Stuck one');
    server.clock.advance(61 * MINUTE);

    const [table, json] = await Promise.all([taskwarden(['stats']), taskwarden(['stats', '--json'])]);
    expect(table.code).toBe(0);
    for (const [label, count] of [
      ['PENDING', 0],
      ['RUNNING', 1],
      ['COMPLETED', 1],
      ['FAILED', 1],
      ['CANCELLED', 0],
      ['total', 3],
    ] as const) {
      expect(table.stdout).toMatch(new RegExp(`│ ${label}\\s+│ ${count}\\s+│`));
    }
    expect(table.stdout).toContain('Success rate      50.0% of finished tasks completed');
    expect(table.stdout).toMatch(/Average duration  \d+s/);
    expect(table.stdout).toContain("Stuck now         1 (see taskwarden stuck) under the monitor's clocks: no heartbeat for 2 min, no progress for 60 min");
    expect(table.stdout).toContain('Monitor           off in this server');
    expect(table.stdout).toMatch(/Last sweep        \d\d:\d\d:\d\d \(.*\): scanned 0, found 0, fixed 0/);

    expect(json.code).toBe(0);
    const stats = parse(json);
    expect(stats.taskStats).toMatchObject({ total: 3, running: 1, completed: 1, failed: 1, stuck: 1, successRate: 0.5 });
    expect(stats.monitor).toMatchObject({ enabled: false, timeoutMinutes: 60, lastSweepScanned: 0 });
    expect(stats.monitor.lastSweepAt).toEqual(expect.any(String));
  });

  it('errors: server down exits 3, a usage error exits 2, each in one line', async () => {
    const down = await downUrl();
    const [list, statsJson, fromEnv] = await Promise.all([
      taskwarden(['--url', down, 'list']),
      taskwarden(['stats', '--url', down, '--json']),
      taskwarden(['stuck'], { env: { TASKWARDEN_URL: down } }),
    ]);
    for (const run of [list, fromEnv]) {
      expect(run.code).toBe(3);
      expect(run.stdout).toBe('');
      oneLine(run.stderr);
      expect(run.stderr).toBe(`taskwarden: Taskwarden at ${down} is unreachable: ECONNREFUSED (is the server running? set --url or TASKWARDEN_URL)\n`);
    }
    expect(statsJson.code).toBe(3);
    expect(JSON.parse(statsJson.stderr).error.code).toBe('NETWORK_ERROR');

    const [limit, unknownCommand, noId, badUrl, usageJson, help] = await Promise.all([
      taskwarden(['list', '--limit', 'zero']),
      taskwarden(['frobnicate']),
      taskwarden(['stop']),
      taskwarden(['--url', 'localhost', 'list']),
      taskwarden(['list', '--status', 'bogus', '--json']),
      taskwarden(['force', '--help']),
    ]);
    for (const run of [limit, unknownCommand, noId, badUrl, usageJson]) {
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      oneLine(run.stderr);
    }
    expect(limit.stderr).toBe(
      "taskwarden: option '--limit <n>' argument 'zero' is invalid. expected a whole number of 1 or more (see taskwarden list --help)\n",
    );
    expect(unknownCommand.stderr).toBe("taskwarden: unknown command 'frobnicate' (see taskwarden --help)\n");
    expect(noId.stderr).toBe("taskwarden: required option '--task-id <id>' not specified (see taskwarden stop --help)\n");
    expect(JSON.parse(usageJson.stderr).error).toEqual({
      code: 'USAGE',
      message: "option '--status <statuses>' argument 'bogus' is invalid. expected pending, running, completed, failed, cancelled",
    });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: taskwarden force [options]');
    expect(help.stdout).toContain('$ taskwarden force --task-id 17d5f40b-d2a1-4b5e-8b8f-a10a93d23c33 --status failed');
  });

  it('--help of the program and of every command ends with examples', () => {
    const program = createProgram();
    const token = program.commands.find((c) => c.name() === 'token')!;
    for (const command of [program, ...program.commands.filter((c) => c.name() !== 'help'), ...token.commands.filter((c) => c.name() !== 'help')]) {
      let text = '';
      command.configureOutput({ writeOut: (chunk) => (text += chunk) });
      command.outputHelp();
      const path = command === program ? '' : command.parent === token ? `token ${command.name()}` : command.name();
      expect(text, command.name()).toMatch(new RegExp(`Examples:\\n  \\$ taskwarden ${path}`));
    }
    expect(program.commands.map((c) => c.name())).toEqual([
      'list',
      'stuck',
      'stop',
      'delete',
      'force',
      'cleanup',
      'stats',
      'watch',
      'fix-stuck',
      'token',
      'queues',
      'pause',
      'resume',
      'limit',
      'submit',
      'prune',
    ]);
  });

  it('queues, pause, resume, limit; submit --file creates a batch once, however often it is submitted; list shows priority, runAt and what a task waits for', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-submit-'));
    dirs.push(dir);
    const file = join(dir, 'sweep.jsonl');
    writeFileSync(
      file,
      [
        '# a sweep and its report',
        '{"name": "SMA AAPL 10/50", "kind": "backtest", "params": {"fast": 10}, "idempotencyKey": "s-1"}',
        '{"name": "SMA AAPL 20/100", "kind": "backtest", "params": {"fast": 20}, "idempotencyKey": "s-2", "runAt": "2099-01-01T00:00:00Z"}',
        '',
        '{"name": "sweep report", "kind": "report", "priority": 7, "dependsOnIndex": [0, 1], "idempotencyKey": "s-report"}',
      ].join('\n'),
    );
    const first = await taskwarden(['submit', '--file', file, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const created = parse(first).tasks as { id: string; name: string }[];
    expect(created.map((t) => t.name)).toEqual(['SMA AAPL 10/50', 'SMA AAPL 20/100', 'sweep report']);
    const again = await taskwarden(['submit', '--file', file]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Submitted 3 tasks in one batch.');
    expect((await client.listTasks()).totalCount).toBe(3);

    const list = await taskwarden(['list']);
    expect(list.stdout).toMatch(/│ sweep report\s+│ PENDING\s+│ 7\s+│ -\s+│.*│ dependency: 2 not completed yet\s+│/);
    expect(list.stdout).toMatch(/│ SMA AAPL 20\/100\s+│ PENDING\s+│ 0\s+│ 2099-01-01 00:00:00Z │.*│ delay: until 2099-01-01T00:00:00.000Z\s+│/);

    expect((await taskwarden(['limit', 'backtest', '4'])).stdout).toContain('At most 4 "backtest" tasks run at once now (0 running).');
    expect((await taskwarden(['pause', 'backtest'])).stdout).toContain('Paused "backtest": 0 running go on, 2 pending wait.');
    const queues = await taskwarden(['queues']);
    expect(queues.stdout).toMatch(/│ kind\s+│ ready │ delayed │ blocked │ running │ limit │ paused │ oldest ready │/);
    expect(queues.stdout).toMatch(/│ backtest │ 1\s+│ 1\s+│ 0\s+│ 0\s+│ 4\s+│ paused │ [\dms ]+│/);
    expect(queues.stdout).toMatch(/│ report\s+│ 0\s+│ 0\s+│ 1\s+│ 0\s+│ -\s+│ -\s+│ -\s+│/);
    expect(await client.claimTask('w1', ['backtest'])).toBeNull();
    expect((await taskwarden(['resume', 'backtest'])).stdout).toContain('Resumed "backtest": 1 ready to claim.');
    expect((await taskwarden(['limit', 'backtest', 'none'])).stdout).toContain('"backtest" has no limit now (0 running).');
    const json = parse(await taskwarden(['queues', '--json']));
    expect(json.queues).toContainEqual({
      kind: 'backtest',
      pending: 1,
      delayed: 1,
      blocked: 0,
      running: 0,
      limit: null,
      paused: false,
      oldestReadyAgeSeconds: expect.any(Number),
    });

    writeFileSync(file, '{"name": "ok"}\nnot json\n');
    const bad = await taskwarden(['submit', '--file', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(':2: not JSON');
    expect((await taskwarden(['limit', 'backtest', 'lots'])).code).toBe(2);
    expect((await client.listTasks()).totalCount).toBe(3);
  });

  it('fix-stuck through the API: dry run, asks first, stops with --yes, deletes with --delete', async () => {
    const first = await runningTask('Momentum 12-1 0700.HK', { progress: 90, message: 'saving results' });
    const second = await runningTask('Turtle breakout GC');
    server.clock.advance(61 * MINUTE);

    const dry = await taskwarden(['fix-stuck', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`Taskwarden at ${server.url} is up: working through the API.`);
    expect(dry.stdout).toContain('2 stuck tasks (timeout 60 min).');
    expect(dry.stdout).toContain('Dry run: would stop these 2 tasks through the API. Nothing was changed.');

    const declined = await taskwarden(['fix-stuck'], { input: 'n\n' });
    expect(declined.code).toBe(1);
    expect(declined.stderr).toContain('Stop these 2 tasks through the API? [y/N] n\n');
    expect(declined.stderr).toContain('taskwarden: Nothing was changed (not confirmed; --yes skips the question).');
    expect((await client.getTask(first.id))?.status).toBe('RUNNING');

    const fixed = await taskwarden(['fix-stuck', '--yes', '--json']);
    expect(fixed.code).toBe(0);
    const report = parse(fixed);
    expect(report).toMatchObject({ via: 'api', target: server.url, timeoutMinutes: 60, dryRun: false });
    expect(report.tasks).toHaveLength(2);
    for (const task of report.tasks)
      expect(task).toMatchObject({ status: 'CANCELLED', stuckReason: 'NO_HEARTBEAT', stopped: true, deleted: false, error: null });
    for (const { id } of [first, second]) {
      expect(await lastEvent(id)).toMatchObject({ type: 'CANCELLED', actor: 'operator', reason: 'fix-stuck: NO_HEARTBEAT' });
    }

    const third = await runningTask('Walk-forward ES');
    server.clock.advance(61 * MINUTE);
    const deleted = await taskwarden(['fix-stuck', '--delete'], { input: 'y\n' });
    expect(deleted.code).toBe(0);
    expect(deleted.stderr).toBe('Stop this task and delete it through the API? [y/N] y\n');
    expect(deleted.stdout).toMatch(new RegExp(`│ ${third.id} │ Walk-forward ES │ CANCELLED, deleted │`));
    expect(deleted.stdout).toContain('Stopped 1 of 1, deleted 1.');
    expect(await client.getTask(third.id)).toBeNull();
  });

  it('fix-stuck with the server down: repairs its PGlite folder directly (actor cli), never one a running server holds', { timeout: 60_000 }, async () => {
    const dataDir = tempDir();
    const down = await downUrl();
    const env = { DATA_DIR: dataDir };
    const holder = await spawnServer({ DATA_DIR: dataDir, MONITOR_ENABLED: 'false' });
    let id!: string;
    try {
      // A task whose worker goes quiet: stuck under fix-stuck's --timeout 1s a second later.
      const api = createTaskwardenClient({ url: holder.url });
      ({ id } = await api.createTask({ name: 'Walk-forward ES futures' }));
      await api.startTask(id, 'worker-7');

      // The API does not answer (at --url), but a server still holds the folder: refused, untouched.
      const locked = await taskwarden(['--url', down, 'fix-stuck', '--timeout', '1s', '--yes'], { env });
      expect(locked.code).toBe(1);
      oneLine(locked.stderr);
      expect(locked.stderr).toMatch(
        new RegExp(`^taskwarden: Not touching the database directly: The database in ${dataDir} is in use by process ${holder.child.pid} `),
      );
      expect((await api.getTask(id))?.status).toBe('RUNNING');
    } finally {
      holder.child.kill('SIGTERM');
      expect(await holder.exited).toBe(0);
    }

    const dry = await taskwarden(['--url', down, 'fix-stuck', '--timeout', '1s', '--dry-run', '--json'], { env });
    expect(dry.code).toBe(0);
    const planned = parse(dry);
    expect(planned).toMatchObject({ via: 'database', target: join(dataDir, 'pg'), timeoutMinutes: 1 / 60, dryRun: true });
    expect(planned.tasks).toEqual([expect.objectContaining({ id, status: 'RUNNING', stuckReason: 'NO_HEARTBEAT', stopped: false, workerId: 'worker-7' })]);

    const fixed = await taskwarden(['--url', down, 'fix-stuck', '--timeout', '1s', '--yes'], { env });
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain(`Taskwarden at ${down} is unreachable (ECONNREFUSED): working on its database directly.`);
    expect(fixed.stdout).toMatch(new RegExp(`│ ${id} │ Walk-forward ES futures │ CANCELLED │`));
    expect(fixed.stdout).toContain('Stopped 1 of 1.');

    const reopened = await openDatabase({ dataDir });
    try {
      expect((await reopened.prisma.task.findUnique({ where: { id } }))?.status).toBe('CANCELLED');
      const history = await reopened.prisma.taskEvent.findMany({ where: { taskId: id }, orderBy: { id: 'asc' } });
      expect(history.at(-1)).toMatchObject({ type: 'CANCELLED', actor: 'cli', reason: 'fix-stuck: NO_HEARTBEAT', fromStatus: 'RUNNING' });
    } finally {
      await reopened.close();
    }

    // Where there is no database, it creates none.
    const empty = tempDir();
    const nothing = await taskwarden(['--url', down, 'fix-stuck', '--yes'], { env: { DATA_DIR: empty } });
    expect(nothing.code).toBe(3);
    expect(nothing.stderr).toBe(`taskwarden: There is no Taskwarden database in ${empty} to open directly (set DATA_DIR, or pass --database-url).\n`);
    expect(readdirSync(empty)).toEqual([]);
  });

  it('watch: progress and stuck alerts as they arrive, as NDJSON and as lines; --task-id ends with its task', async () => {
    const task = await runningTask('Live SMA cross', { progress: 10, message: 'loading data' });
    const json = follow(['watch', '--json']);
    const lines = follow(['watch']);
    const single = follow(['watch', '--task-id', task.id, '--json']);
    try {
      await json.waitFor((line) => line.includes('"state":"connected"'), 'watch --json to connect');
      await single.waitFor((line) => line.includes('"state":"connected"'), 'watch --task-id to connect');
      await lines.waitFor((line) => line.startsWith('Watching '), 'watch to start');
      const snapshot = json.json().find((line) => line.type === 'snapshot');
      expect(snapshot?.tasks).toEqual([expect.objectContaining({ id: task.id, progress: 10, message: 'loading data' })]);
      expect(lines.lines()).toContain('RUNNING    10% Live SMA cross loading data');

      // A subscription is live a moment after the connection: report until each watcher has seen one.
      let progress = 20;
      await until(async () => {
        await client.reportProgress(task.id, task.leaseToken, { progress: progress++, message: 'simulating trades' });
        const seen = (w: ReturnType<typeof follow>) => w.json().some((l) => l.type === 'event' && l.event.type === 'PROGRESS' && l.event.progress >= 20);
        return seen(json) && seen(single) && lines.lines().some((l) => /^\d\d:\d\d:\d\d PROGRESS {2}Live SMA cross \d+% simulating trades$/.test(l));
      }, 'a progress update in every watcher');
      const update = json.json().find((l) => l.type === 'event' && l.event.type === 'PROGRESS')!;
      expect(update.event).toMatchObject({ taskId: task.id, progress: 20, message: 'simulating trades', task: { id: task.id, status: 'RUNNING' } });

      server.clock.advance(61 * MINUTE);
      await client.runMonitorSweep(); // the monitor's action: cancel, with an alert

      await json.waitFor((line) => line.includes('"type":"stuck"'), 'the stuck alert');
      const alert = json.json().find((l) => l.type === 'stuck')!;
      expect(alert.alert).toMatchObject({ reason: 'NO_HEARTBEAT', actionTaken: 'CANCEL', actor: 'monitor', task: { id: task.id, status: 'CANCELLED' } });
      await lines.waitFor((line) => /STUCK {5}Live SMA cross: NO_HEARTBEAT for 1h 01m -> CANCEL \(CANCELLED\)$/.test(line), 'the stuck alert line');

      // watch --task-id ends by itself once its task is finished.
      expect(await single.exited).toBe(0);
      expect(single.json().some((l) => l.type === 'event' && l.event.toStatus === 'CANCELLED')).toBe(true);
    } finally {
      json.child.kill('SIGTERM');
      lines.child.kill('SIGTERM');
      single.child.kill('SIGTERM');
    }
    expect(await json.exited).toBe(0);
    expect(await lines.exited).toBe(0);
  });
});

describe('watch, resuming', () => {
  it('after the server comes back, prints what changed meanwhile once each, resuming from the id of the last event it got', async () => {
    const task = await runningTask('Resumed pairs trade', { progress: 5 });
    const watch = follow(['watch', '--json']);
    try {
      await watch.waitFor((line) => line.includes('"state":"connected"'), 'watch to connect');
      const events = () =>
        watch
          .json()
          .filter((l) => l.type === 'event')
          .map((l) => l.event as { id: string; message: string | null });
      let step = 0;
      await until(async () => {
        await client.reportProgress(task.id, task.leaseToken, { progress: 10 + step, message: `before ${step++}` });
        return events().length > 0;
      }, 'a progress event before the drop');
      const port = new URL(server.url).port;
      await server.stop();
      await watch.waitFor((line) => line.includes('"state":"closed"'), 'watch to see the drop');
      const lastBefore = events().at(-1)!.id;

      // While the server is down, the task moves on in its database.
      const { taskHarness } = await import('./support/tasks.js');
      const { tasks } = taskHarness(database);
      for (const n of [1, 2, 3]) await tasks.reportProgress(task.id, task.leaseToken, { progress: 50 + n, message: `while away ${n}` });
      server = await startTestServer(database, { PORT: port });

      await until(() => events().some((e) => e.message === 'while away 3'), 'the events made while away');
      await client.reportProgress(task.id, task.leaseToken, { progress: 90, message: 'after' });
      await until(() => events().some((e) => e.message === 'after'), 'a live event after the resume');
      const after = events().slice(events().findIndex((e) => e.id === lastBefore) + 1);
      const history = (await client.events({ afterEventId: lastBefore })).filter((e) => e.taskId === task.id);
      expect(after.map((e) => e.id)).toEqual(history.map((e) => e.id));
      expect(after.map((e) => e.message)).toEqual(['while away 1', 'while away 2', 'while away 3', 'after']);
      const ids = events().map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      watch.child.kill('SIGTERM');
    }
    expect(await watch.exited).toBe(0);
  }, 60_000);
});

describe('token', () => {
  it('creates, lists and revokes tokens through the API; the secret is shown once; --json gives name, role, token', async () => {
    const own = await openTestDatabase('pglite');
    const guarded = await startTestServer(own);
    const env = { TASKWARDEN_URL: guarded.url };
    // While no token exists, the loopback server lets the first one be made.
    const admin = await taskwarden(['token', 'create', '--role', 'admin', '--name', 'alice', '--json'], { env });
    expect(admin.code).toBe(0);
    const created = JSON.parse(admin.stdout);
    expect(Object.keys(created)).toEqual(['name', 'role', 'token']);
    expect(created).toMatchObject({ name: 'alice', role: 'admin', token: expect.stringMatching(/^tw_/) });

    // From now on a token is needed.
    const refused = await taskwarden(['token', 'list'], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toMatch(/requires an API token/);

    const asAdmin = { ...env, TASKWARDEN_TOKEN: created.token };
    const worker = await taskwarden(['token', 'create', '--role', 'worker', '--name', 'ci-runner'], { env: asAdmin });
    expect(worker.code).toBe(0);
    expect(worker.stdout).toContain('Created worker token ci-runner. Its secret, shown this once:');
    const workerSecret = /\b(tw_\S+)/.exec(worker.stdout)![1]!;

    const listed = await taskwarden(['token', 'list', '--json'], { env: asAdmin });
    expect(JSON.parse(listed.stdout).tokens.map((t: { name: string; role: string }) => `${t.name}:${t.role}`)).toEqual(['alice:admin', 'ci-runner:worker']);
    expect(listed.stdout).not.toContain(workerSecret.slice(-43));
    const table = await taskwarden(['token', 'list'], { env: asAdmin });
    expect(table.stdout).toMatch(/ci-runner\s+│\s+worker\s+│\s+database/);

    // A worker token may not manage tokens: the server's refusal, exit 1.
    const forbidden = await taskwarden(['token', 'list'], { env: { ...env, TASKWARDEN_TOKEN: workerSecret } });
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toContain('A worker token may not use Query.apiTokens.');

    const revoked = await taskwarden(['token', 'revoke', '--name', 'ci-runner', '--json'], { env: asAdmin });
    expect(JSON.parse(revoked.stdout).token).toMatchObject({ name: 'ci-runner', revokedAt: expect.any(String) });
    const afterRevoke = await taskwarden(['list'], { env: { ...env, TASKWARDEN_TOKEN: workerSecret } });
    expect(afterRevoke.code).toBe(1);
    expect(afterRevoke.stderr).toMatch(/not valid/);
    await guarded.stop();
    await own.close();
  });

  it("prune applies TASK_RETENTION on the server's database: --dry-run counts, then it deletes, batch by batch", { timeout: 120_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskwarden-prune-'));
    dirs.push(dataDir);
    const db = await openDatabase({ dataDir });
    await db.prisma.$executeRawUnsafe(`
      INSERT INTO "Task" (name, status, "createdAt", "startedAt", "completedAt")
      VALUES ('old', 'COMPLETED', now() - interval '10 days', now() - interval '10 days', now() - interval '10 days'),
             ('old but running', 'RUNNING', now() - interval '10 days', now() - interval '10 days', NULL),
             ('young', 'FAILED', now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour')`);
    await db.close();
    const env = { TASKWARDEN_URL: 'http://127.0.0.1:9/graphql', DATA_DIR: dataDir, TASK_RETENTION: '7d' };
    const dry = await taskwarden(['prune', '--dry-run', '--json'], { env });
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ taskRetention: '7 days', historyRetention: '30 days', tasks: 1, events: 0, dryRun: true });
    const done = await taskwarden(['prune'], { env });
    expect(done.code).toBe(0);
    expect(done.stdout).toContain('Deleted 1 finished task(s) and 0 history entries.');
    const after = await openDatabase({ dataDir });
    expect((await after.prisma.task.findMany({ orderBy: { name: 'asc' } })).map((t) => t.name)).toEqual(['old but running', 'young']);
    await after.close();
  });

  it('bootstraps the first token of a new deployment in its database, so a server beyond loopback can start', { timeout: 120_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'taskwarden-token-'));
    dirs.push(dataDir);
    const { runServerToExit } = await import('./support/process.js');
    const noToken = await runServerToExit({ DATA_DIR: dataDir, HOST: '0.0.0.0' });
    expect(noToken.code).toBe(1);
    expect(noToken.output).toContain('npx taskwarden token create --role admin --name <you>');

    const created = await taskwarden(['token', 'create', '--role', 'admin', '--name', 'bootstrap', '--json'], {
      env: { TASKWARDEN_URL: 'http://127.0.0.1:9/graphql', DATA_DIR: dataDir },
    });
    expect(created.code).toBe(0);
    const { token } = JSON.parse(created.stdout);

    const running = await spawnServer({ DATA_DIR: dataDir, HOST: '0.0.0.0' });
    const url = running.url.replace('0.0.0.0', '127.0.0.1');
    const viewer = await taskwarden(['stats', '--json'], { env: { TASKWARDEN_URL: url, TASKWARDEN_TOKEN: token } });
    expect(viewer.code).toBe(0);
    const anonymous = await taskwarden(['stats'], { env: { TASKWARDEN_URL: url } });
    expect(anonymous.code).toBe(1);
    running.child.kill('SIGTERM');
    await running.exited;
  });
});
