import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openTestDatabase, type TestDatabase } from './support/databases.js';
import { startTestServer, type TestServer } from './support/server.js';
import { findChromium, noBrowserNotice } from './support/browser.js';
import { taskHarness } from './support/tasks.js';

// The dashboard in a real headless Chromium against a real server on port 0.
const CHROMIUM = await findChromium();
if ('missing' in CHROMIUM) console.warn(noBrowserNotice(CHROMIUM.missing));
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOTS = 'test-results/screenshots';
const DASHBOARD = 'test-results/web-dist';
// Stuck after a minute of the server's clock, which the tests move; the monitor alerts and leaves the task running.
const ENV = { HEARTBEAT_TIMEOUT: '1m', STALL_TIMEOUT: '1m', MONITOR_ACTION: 'none' };
const TASK = 'id status progress error';

describe.skipIf('missing' in CHROMIUM)('the dashboard, in Chromium', () => {
  let database: TestDatabase;
  let server: TestServer;
  let profile: string;
  let browser: BrowserContext;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    // The current sources, built into a folder of the tests' own: a server running from web/dist meanwhile keeps working.
    execFileSync('npm', ['run', '--silent', 'build:web', '--', '--logLevel', 'warn', '--outDir', `${process.cwd()}/${DASHBOARD}`], { stdio: 'inherit' });
    mkdirSync(SCREENSHOTS, { recursive: true });
    database = await openTestDatabase('pglite');
    server = await startServer();
    profile = mkdtempSync(join(tmpdir(), 'taskwarden-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: 'path' in CHROMIUM ? CHROMIUM.path : undefined,
      args: FLAGS,
      locale: 'en-US',
      viewport: { width: 1280, height: 900 },
    });
  }, 120_000);

  const startServer = (env: Record<string, string> = {}) => startTestServer(database, { ...ENV, ...env }, { dashboardDir: DASHBOARD });

  afterAll(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await server?.stop();
    await database?.close();
  });

  beforeEach(async () => {
    await database.reset();
    problems = [];
  });

  afterEach(async () => {
    await page?.close();
    // Whatever the test did, the page logged no error.
    expect(problems).toEqual([]);
  });

  /** Opens the board and waits until it is live (connected and caught up). */
  async function open(viewport = { width: 1280, height: 900 }, beforeLoad?: (page: Page) => void) {
    page = await browser.newPage();
    beforeLoad?.(page);
    page.setDefaultTimeout(10_000);
    await page.setViewportSize(viewport);
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('requestfailed', (request) => {
      if (request.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
    });
    await page.goto(server.url.replace(/\/graphql$/, '/'));
    await page.locator('[data-testid=connection][data-state=live]').waitFor();
    // Set once; a reload would lose it.
    await page.evaluate('window.loadedOnce = true');
    return page;
  }

  // The board settles within a second or two; a slow CI machine gets more.
  const eventually = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 10_000, interval: 50 });
  const stillTheSamePage = () => page.evaluate('window.loadedOnce === true');
  /** The whole page, in a window as tall as the page, so toasts sit at its bottom as a person would see them. */
  async function shot(name: string) {
    const viewport = page.viewportSize()!;
    const height = (await page.evaluate('document.documentElement.scrollHeight')) as number;
    await page.setViewportSize({ width: viewport.width, height: Math.max(viewport.height, height) });
    await page.screenshot({ path: `${SCREENSHOTS}/${name}.png` });
    await page.setViewportSize(viewport);
  }
  const row = (id: string) => page.locator(`[data-testid=task-row][data-task-id="${id}"]`);

  const create = async (name: string, extra: Record<string, unknown> = {}) =>
    (await server.ok(`mutation($input: CreateTaskInput!) { createTask(input: $input) { ${TASK} } }`, { input: { name, params: { symbol: 'AAPL' }, ...extra } }))
      .createTask as { id: string };
  const start = async (id: string, workerId = 'worker-1') =>
    (await server.ok(`mutation($id: ID!, $w: String!) { startTask(id: $id, workerId: $w) { leaseToken } }`, { id, w: workerId })).startTask
      .leaseToken as string;
  const report = (id: string, lease: string, progress: number, message?: string) =>
    server.ok(`mutation($id: ID!, $l: String!, $p: Float, $m: String) { reportProgress(id: $id, leaseToken: $l, progress: $p, message: $m) { id } }`, {
      id,
      l: lease,
      p: progress,
      m: message,
    });
  const running = async (name: string, workerId = 'worker-1') => {
    const { id } = await create(name);
    return { id, lease: await start(id, workerId) };
  };
  const taskById = async (id: string) => (await server.ok(`query($id: ID!) { task(id: $id) { ${TASK} events { type actor reason } } }`, { id })).task;

  it('loads with no console errors, next to GraphiQL', async () => {
    await open();
    expect(await page.title()).toBe('Taskwarden');
    for (const card of ['running', 'pending', 'completed', 'failed', 'cancelled', 'stuck', 'successRate', 'averageDurationSeconds']) {
      await page.getByTestId(`stat-${card}`).waitFor();
    }
    await page.locator('[data-testid=outcomes-chart] canvas').waitFor();
    await page.getByText('No tasks yet.').waitFor();
    const graphiql = await fetch(server.url, { headers: { accept: 'text/html' } });
    expect(graphiql.status).toBe(200);
    expect(await graphiql.text()).toContain('GraphiQL');
    await shot('loads');
  });

  it('serves only the built files: hashed assets cached for good, the page revalidated, no way out of web/dist', async () => {
    const base = server.url.replace(/\/graphql$/, '');
    const index = await fetch(`${base}/`);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(await index.text())![1]!;
    const asset = await fetch(`${base}${script}`);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    for (const path of ['/../package.json', '/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2fpackage.json', '/src/main.tsx', '/nope']) {
      expect((await rawGet(base, path)).status, path).toBe(404);
    }
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('queues: an operator pauses, resumes and limits a kind; pending rows say what they wait for; the detail links dependencies', async () => {
    const first = await create('SMA sweep 1', { kind: 'sweep' });
    const later = await create('SMA sweep later', { kind: 'sweep', runAt: '2099-01-01T00:00:00Z', priority: 3 });
    const report = await create('Sweep report', { kind: 'report', dependsOn: [first.id, later.id] });
    await open();
    const queue = (kind: string) => page.locator(`[data-testid=queue-row][data-kind="${kind}"]`);
    await queue('sweep').waitFor();
    expect(await queue('sweep').getByTestId('queue-ready').textContent()).toBe('1');
    expect(await row(report.id).getByTestId('waiting-for').textContent()).toBe('waiting for dependency: 2 not completed yet');
    expect(await row(later.id).getByTestId('priority').textContent()).toBe('priority 3');
    expect(await row(later.id).getByTestId('waiting-for').textContent()).toContain('waiting for delay: until 2099-01-01');

    await queue('sweep').getByTestId('pause').click();
    await page.locator('[data-testid=queue-row][data-kind="sweep"][data-paused=true]').waitFor();
    expect((await server.ok(`mutation { claimTask(workerId: "w1", kinds: ["sweep"]) { leaseToken } }`)).claimTask).toBeNull();
    await eventually(() => row(first.id).getByTestId('waiting-for').textContent()).toBe('waiting for pause: kind "sweep" is paused');
    await queue('sweep').getByTestId('limit-input').fill('2');
    await queue('sweep').getByTestId('limit-save').click();
    await eventually(async () => (await server.ok(`{ queues { kind limit } }`)).queues).toContainEqual({ kind: 'sweep', limit: 2 });
    await shot('queues');
    await queue('sweep').getByTestId('resume').click();
    await page.locator('[data-testid=queue-row][data-kind="sweep"][data-paused=false]').waitFor();
    expect((await server.ok(`mutation { claimTask(workerId: "w1", kinds: ["sweep"]) { task { id } } }`)).claimTask.task.id).toBe(first.id);

    await row(report.id).getByTestId('task-link').click();
    const detail = page.getByTestId('task-detail');
    await detail.getByTestId('depends-on').waitFor();
    expect((await detail.getByTestId('depends-on').getByTestId('dependency-link').allTextContents()).sort()).toEqual(['SMA sweep 1', 'SMA sweep later']);
    await detail.getByTestId('depends-on').getByText('SMA sweep 1').click();
    await detail.getByTestId('dependants').waitFor();
    expect(await detail.getByTestId('dependants').getByTestId('dependency-link').allTextContents()).toEqual(['Sweep report']);
    await shot('dependencies');
  });

  it('shows a task created through the API, without a reload', async () => {
    await open();
    const { id } = await create('SMA cross AAPL 2015-2019');
    await row(id).waitFor();
    expect(await row(id).getAttribute('data-status')).toBe('PENDING');
    expect(await row(id).getByTestId('task-link').textContent()).toBe('SMA cross AAPL 2015-2019');
    await eventually(() => page.getByTestId('stat-pending').getAttribute('data-value')).toBe('1');
    expect(await stillTheSamePage()).toBe(true);
    await shot('created');
  });

  it('moves the progress bar as progress is reported, without a reload', async () => {
    const { id, lease } = await running('RSI mean-reversion BTC-USD 2018-2022');
    await open();
    const bar = row(id).getByTestId('progress');
    expect(await bar.getAttribute('aria-valuenow')).toBe('0');
    await report(id, lease, 35, 'loading prices');
    await eventually(() => bar.getAttribute('aria-valuenow')).toBe('35');
    await report(id, lease, 80, 'simulating trades');
    await eventually(() => bar.getAttribute('aria-valuenow')).toBe('80');
    expect(await row(id).textContent()).toContain('simulating trades');
    // The running-tasks chart moves with it.
    await eventually(() => page.locator('[data-testid=running-chart] [data-testid=progress]').getAttribute('aria-valuenow')).toBe('80');
    expect(await stillTheSamePage()).toBe(true);
    await shot('progress');
  });

  it('alerts on a stuck task (toast and alert list) and marks its row', async () => {
    const { id, lease } = await running('Bollinger breakout NVDA 2020-2024');
    await report(id, lease, 90, 'saving results');
    await open();
    server.clock.advance(2 * 60_000);
    expect((await server.ok(`mutation { runMonitorSweep { alerted } }`)).runMonitorSweep.alerted).toBe(1);

    const toast = page.getByTestId('toast').filter({ hasText: 'Bollinger breakout NVDA 2020-2024' });
    await toast.waitFor();
    expect(await toast.textContent()).toContain('NO_HEARTBEAT');
    // The same words as the webhook's summary: the monitor's action, as done.
    expect(await toast.textContent()).toContain('left running by monitor');
    const alert = page.locator(`[data-testid=alert-item][data-task-id="${id}"]`);
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/NO_HEARTBEAT for .*; left running by monitor/);
    expect(await alert.getByRole('link').getAttribute('href')).toBe(`#/tasks/${id}`);
    const marker = row(id).getByTestId('stuck-marker');
    await marker.waitFor();
    expect(await marker.textContent()).toMatch(/Stuck · NO_HEARTBEAT · 2 min/);
    await eventually(() => page.getByTestId('stat-stuck').getAttribute('data-value')).toBe('1');
    await shot('stuck');

    // The alert links to the task: its history says who found it and why.
    await alert.getByRole('link').click();
    const timeline = page.getByTestId('timeline');
    await timeline.getByText('STUCK', { exact: true }).waitFor();
    expect(await timeline.textContent()).toContain('by monitor: NO_HEARTBEAT');
    await shot('stuck-detail');

    // Once it is dealt with, its row still says it was caught stuck.
    await server.ok(`mutation($id: ID!) { forceComplete(id: $id) { id } }`, { id });
    await page.locator(`[data-testid=task-row][data-task-id="${id}"][data-status=CANCELLED]`).waitFor();
    expect(await row(id).getByTestId('caught-marker').textContent()).toBe('Was stuck · NO_HEARTBEAT');
    expect(await row(id).getByTestId('stuck-marker').count()).toBe(0);
  });

  it('force-completes a task from the UI', async () => {
    const { id } = await running('Momentum 12-1 0700.HK 2015-2019');
    await open();
    await row(id).getByTestId('action-force').click();
    const dialog = page.getByTestId('dialog');
    await dialog.getByLabel('FAILED').check();
    await dialog.getByTestId('reason').fill('worker host was rebooted');
    await shot('force-dialog');
    await dialog.getByTestId('confirm').click();
    await page.locator(`[data-testid=task-row][data-task-id="${id}"][data-status=FAILED]`).waitFor();
    expect(await dialog.isVisible()).toBe(false);
    const task = await taskById(id);
    expect(task).toMatchObject({ status: 'FAILED', error: 'worker host was rebooted' });
    expect(task.events.at(-1)).toEqual({ type: 'FAILED', actor: 'operator', reason: 'worker host was rebooted' });
    await shot('force-completed');
  });

  it("refuses to delete a running task with the server's own message, and deletes a finished one", async () => {
    const { id } = await running('Pairs (cointegration) SPY 2018-2022');
    const done = await running('Donchian channel EURUSD');
    await server.ok(`mutation($id: ID!) { stopTask(id: $id) { id } }`, { id: done.id });
    await open();

    // Rows offer Delete only for finished tasks; a selection may hold any, and the server decides.
    expect(await row(id).getByTestId('action-delete').count()).toBe(0);
    await row(id).getByTestId('select').check();
    await page.getByTestId('bulk-delete').click();
    const dialog = page.getByTestId('dialog');
    expect(await dialog.getByTestId('delete-warning').textContent()).toContain('RUNNING');
    await dialog.getByTestId('confirm').click();
    const refusal = dialog.getByTestId('dialog-error');
    await refusal.waitFor();
    expect(await refusal.textContent()).toBe(`Task ${id} is RUNNING: stop or force-complete it first, then delete it.`);
    await shot('delete-refused');
    expect((await taskById(id)).status).toBe('RUNNING');
    await dialog.getByRole('button', { name: 'Close' }).click();
    expect(await row(id).getAttribute('data-status')).toBe('RUNNING');

    await row(done.id).getByTestId('action-delete').click();
    await dialog.getByTestId('confirm').click();
    await row(done.id).waitFor({ state: 'detached' });
    expect(await taskById(done.id)).toBeNull();
  });

  it('filters by status and kind, searches by name, and pages through the tasks', async () => {
    for (let i = 1; i <= 23; i++) {
      await create(`Grid search ${String(i).padStart(2, '0')}`, i % 2 ? {} : { kind: 'optimize' });
      server.clock.advance(1000);
    }
    const { id } = await running('Walk-forward alpha SPY');
    await open();
    const names = () => page.getByTestId('task-link').allTextContents();
    const info = page.getByTestId('page-info');
    expect(await info.textContent()).toBe('1–20 of 24');
    await page.getByTestId('page-next').click();
    await eventually(() => info.textContent()).toBe('21–24 of 24');
    expect(await names()).toEqual(['Grid search 04', 'Grid search 03', 'Grid search 02', 'Grid search 01']);
    await page.getByTestId('page-previous').click();
    await eventually(() => info.textContent()).toBe('1–20 of 24');
    expect((await names())[0]).toBe('Walk-forward alpha SPY');

    await page.getByTestId('search').fill('ALPHA');
    await eventually(names).toEqual(['Walk-forward alpha SPY']);
    await page.getByTestId('search').fill('');
    await page.getByTestId('filter-RUNNING').click();
    await eventually(() => page.getByTestId('task-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')))).toEqual([id]);
    await page.getByTestId('filter-RUNNING').click();
    await page.getByTestId('filter-kind').selectOption('optimize');
    await eventually(() => info.textContent()).toBe('1–11 of 11');
    expect((await names()).every((name) => /Grid search (0[2468]|1[02468]|2[02])/.test(name))).toBe(true);
    await shot('filtered');
  });

  it('previews a cleanup of stuck tasks, then applies it', async () => {
    const stuck = await running('Bollinger breakout NVDA 2020-2024');
    server.clock.advance(2 * 60_000);
    const fine = await running('SMA cross AAPL 2015-2019');
    await open();
    await page.getByTestId('cleanup').click();
    const dialog = page.getByTestId('dialog');
    // Empty: the server judges by the monitor's clocks (1 min here), as the monitor itself would.
    expect(await dialog.getByTestId('cleanup-timeout').inputValue()).toBe('');
    await dialog.getByTestId('confirm').click();
    const report = dialog.getByTestId('cleanup-report');
    await report.waitFor();
    expect(await report.textContent()).toContain('1 stuck task would be handled (CANCEL)');
    expect(await report.textContent()).toContain('Bollinger breakout NVDA 2020-2024');
    expect(await row(stuck.id).getAttribute('data-status')).toBe('RUNNING');
    await shot('cleanup-preview');
    await dialog.getByTestId('confirm').click();
    await dialog.getByText('Handled 1 of 1 stuck tasks (CANCEL).').waitFor();
    await page.locator(`[data-testid=task-row][data-task-id="${stuck.id}"][data-status=CANCELLED]`).waitFor();
    expect(await row(fine.id).getAttribute('data-status')).toBe('RUNNING');
  });

  describe('with a busy board', () => {
    beforeEach(async () => {
      // Two completed (30 s and 90 s), one failed, one cancelled, hours apart; two running (one of them stuck), two pending.
      for (const [name, seconds] of [
        ['SMA cross AAPL 2015-2019', 30],
        ['Pairs (cointegration) SPY 2018-2022', 90],
      ] as const) {
        const { id, lease } = await running(name);
        server.clock.advance(seconds * 1000);
        await server.ok(`mutation($id: ID!, $l: String!) { completeTask(id: $id, leaseToken: $l, result: { sharpe: 1.4 }) { id } }`, { id, l: lease });
        server.clock.advance(3 * 3600_000);
      }
      const failing = await running('Momentum 12-1 0700.HK 2015-2019', 'worker-2');
      await server.ok(`mutation($id: ID!, $l: String!) { failTask(id: $id, leaseToken: $l, error: "division by zero in position sizing") { id } }`, {
        id: failing.id,
        l: failing.lease,
      });
      server.clock.advance(2 * 3600_000);
      const stopped = await create('Turtle breakout GC=F');
      await server.ok(`mutation($id: ID!) { stopTask(id: $id, reason: "wrong parameters") { id } }`, { id: stopped.id });
      await running('Bollinger breakout NVDA 2020-2024', 'worker-3');
      server.clock.advance(2 * 60_000);
      const moving = await running('RSI mean-reversion BTC-USD 2018-2022', 'worker-1');
      await report(moving.id, moving.lease, 62, 'simulating trades');
      await create('Mean reversion QQQ 2010-2020');
      await create('Carry trade AUDJPY 2012-2022', { kind: 'optimize' });
    });

    const cards = ['running', 'pending', 'completed', 'failed', 'cancelled', 'stuck', 'successRate', 'averageDurationSeconds'] as const;
    const shown = () => Promise.all(cards.map((card) => page.getByTestId(`stat-${card}`).getAttribute('data-value')));
    const expected = async () => {
      const { taskStats } = await server.ok(`{ taskStats { ${cards.join(' ')} } }`);
      return cards.map((card) => String(taskStats[card]));
    };

    it('shows the same numbers as taskStats, and keeps them in step', async () => {
      await open();
      const stats = await expected();
      expect(stats).toEqual(['2', '2', '2', '1', '1', '1', '0.5', '60']);
      await eventually(shown).toEqual(stats);
      const text = await Promise.all(cards.map((card) => page.locator(`[data-testid=stat-${card}] .card-value`).textContent()));
      expect(text).toEqual(['2', '2', '2', '1', '1', '1', '50 %', '1 min']);

      // The monitor catches the stuck one (and leaves it running): the counts stay those of taskStats.
      await server.ok(`mutation { runMonitorSweep { alerted } }`);
      await page.getByTestId('alert-item').waitFor();
      await shot('overview');
      await eventually(shown).toEqual(await expected());
      const pending = await create('Walk-forward SPY');
      await server.ok(`mutation($id: ID!) { stopTask(id: $id) { id } }`, { id: pending.id });
      await eventually(shown).toEqual(await expected());
      expect(await stillTheSamePage()).toBe(true);
    });

    it('fits a phone screen', async () => {
      await open({ width: 390, height: 844 });
      await page.getByTestId('task-row').first().waitFor();
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      await shot('phone');
    });
  });

  it('shows the connection dropping, and after it comes back shows what changed meanwhile', async () => {
    const { id, lease } = await running('Carry trade AUDJPY 2012-2022');
    // What the page says and hears over its WebSocket: the taskUpdated subscriptions it opens, and the events.
    const subscribed: (string | undefined)[] = [];
    const heard: string[] = [];
    await open(undefined, (page) =>
      page.on('websocket', (socket) => {
        socket.on('framesent', ({ payload }) => {
          const message = JSON.parse(String(payload));
          if (message.type === 'subscribe' && /taskUpdated/.test(message.payload.query)) subscribed.push(message.payload.variables?.afterEventId);
        });
        socket.on('framereceived', ({ payload }) => {
          const message = JSON.parse(String(payload));
          const event = message.type === 'next' && message.payload.data?.taskUpdated;
          if (event) heard.push(event.id);
        });
      }),
    );
    // An event seen before the drop: the page resumes after it (afterEventId) and also refetches.
    await report(id, lease, 10, 'loading prices');
    await eventually(() => row(id).getByTestId('progress').getAttribute('aria-valuenow')).toBe('10');
    const lastBefore = heard.at(-1)!;
    const subscribedBefore = subscribed.length;
    const port = new URL(server.url).port;
    await server.stop();
    await page.locator('[data-testid=connection][data-state=reconnecting]').waitFor();

    // While the server is down, its database changes: progress on one task, a new task.
    const { tasks } = taskHarness(database);
    await tasks.reportProgress(id, lease, { progress: 70, message: 'simulating trades' });
    const created = await tasks.create({ name: 'Created while the dashboard was away' });

    server = await startServer({ PORT: port });
    await page.locator('[data-testid=connection][data-state=live]').waitFor({ timeout: 20_000 });
    await row(created.id).waitFor();
    await eventually(() => row(id).getByTestId('progress').getAttribute('aria-valuenow')).toBe('70');
    // It resumed from the id of the last event it heard, and heard what came after it once each, in the history's order.
    expect(subscribed[subscribedBefore]).toBe(lastBefore);
    const missed = (await server.ok(`query($after: ID) { taskEvents(afterEventId: $after) { id } }`, { after: lastBefore })).taskEvents.map(
      (e: { id: string }) => e.id,
    );
    expect(missed).toHaveLength(2);
    await eventually(async () => heard.slice(heard.indexOf(lastBefore) + 1)).toEqual(missed);
    expect(new Set(heard).size).toBe(heard.length);
    expect(await stillTheSamePage()).toBe(true);
    await shot('reconnected');
    // The browser said the server was unreachable meanwhile; nothing else.
    problems = problems.filter((problem) => !/ERR_CONNECTION_REFUSED|WebSocket connection to .* failed/.test(problem));
  }, 40_000);

  // Last: from here on the server wants a token.
  it('asks for an API token once the server requires one, and works with the one given in Settings', async () => {
    const { id } = await create('Visible with a token');
    const { token } = await server.taskwarden.services.tokens.create({ name: 'wallboard', role: 'viewer', createdBy: 'test' });
    page = await browser.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await page.goto(server.url.replace(/\/graphql$/, '/'));
    await page.getByRole('alert').filter({ hasText: 'requires an API token' }).filter({ hasText: 'Open Settings' }).first().waitFor();
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel('API token (kept in this browser)').fill(token);
    await page.getByRole('button', { name: 'Save and reload' }).click();
    await page.locator('[data-testid=connection][data-state=live]').waitFor();
    await row(id).waitFor();
    await shot('with-token');
    // Refused requests before the token was given are all the browser complained about.
    problems = problems.filter((problem) => !/status of 401|WebSocket connection to .* failed/.test(problem));
    await page.evaluate(() => localStorage.clear());
  });
});

/** A GET with the path exactly as given (fetch would resolve the dots). */
function rawGet(base: string, path: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, (res) => {
      res.resume();
      resolve({ status: res.statusCode! });
    });
    req.path = path;
    req.on('error', reject).end();
  });
}
