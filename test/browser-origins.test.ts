import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findChromium, noBrowserNotice } from './support/browser.js';
import { openTestDatabase, type TestDatabase } from './support/databases.js';
import { startTestServer, type TestServer } from './support/server.js';

// Attacks from other web pages, in a real headless Chromium (Debian's package): a page served on a
// second local port (another origin) tries to drive an open (tokenless) Taskwarden, and a DNS-rebinding
// page (a foreign host name resolving to 127.0.0.1) tries too. The dashboard on its own origin still works.
const REBOUND = 'rebound.test';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // What DNS rebinding achieves: a name the attacker controls now points at this machine.
  `--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`,
];
const DASHBOARD = 'test-results/web-dist-origins';

// What a hostile page runs: every way it has to reach the API. Each reports what it got.
const ATTACKS = `
window.attack = async (api) => {
  const wsUrl = api.replace(/^http/, 'ws');
  const mutation = JSON.stringify({ query: 'mutation { createTask(input: { name: "from a hostile page" }) { id } }' });
  const results = {};
  try {
    const response = await fetch(api, { method: 'POST', headers: { 'content-type': 'application/json' }, body: mutation });
    results.fetchJson = 'status ' + response.status + ' ' + (await response.text());
  } catch (error) { results.fetchJson = 'blocked: ' + error.name; }
  try {
    const response = await fetch(api, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: mutation });
    results.fetchNoCors = 'opaque ' + response.type;
  } catch (error) { results.fetchNoCors = 'blocked: ' + error.name; }
  try {
    const response = await fetch(api + '?query=' + encodeURIComponent('{ tasks { totalCount } }'));
    results.fetchGet = 'status ' + response.status + ' ' + (await response.text());
  } catch (error) { results.fetchGet = 'blocked: ' + error.name; }
  results.webSocket = await new Promise((resolve) => {
    const socket = new WebSocket(wsUrl, 'graphql-transport-ws');
    socket.onopen = () => socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'connection_ack') socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: JSON.parse(mutation) }));
      else resolve('message ' + event.data);
    };
    socket.onclose = (event) => resolve('closed ' + event.code);
    setTimeout(() => resolve('no answer'), 5000);
  });
  results.eventSource = await new Promise((resolve) => {
    const source = new EventSource(api + '?query=' + encodeURIComponent('subscription { taskUpdated { id } }'));
    source.onopen = () => { resolve('open'); source.close(); };
    source.onerror = () => { resolve('error'); source.close(); };
    setTimeout(() => resolve('no answer'), 5000);
  });
  return results;
};`;

const chromiumFound = await findChromium();
if ('missing' in chromiumFound) console.warn(noBrowserNotice(chromiumFound.missing));

describe.skipIf('missing' in chromiumFound)('other sites and DNS rebinding, in Chromium', () => {
  let database: TestDatabase;
  let server: TestServer;
  let hostile: Server;
  let hostileUrl: string;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    execFileSync('npm', ['run', '--silent', 'build:web', '--', '--logLevel', 'warn', '--outDir', `${process.cwd()}/${DASHBOARD}`], { stdio: 'inherit' });
    database = await openTestDatabase('pglite');
    server = await startTestServer(database, {}, { dashboardDir: DASHBOARD });
    // The other origin: same machine, another port.
    hostile = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>a page on another site</title><script>${ATTACKS}</script>`);
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    hostileUrl = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath: (chromiumFound as { path: string }).path, args: FLAGS });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => hostile?.close(resolve));
    await server?.stop();
    await database?.close();
  });

  beforeEach(async () => {
    await database.reset();
    page = await browser.newPage();
    page.setDefaultTimeout(10_000);
  });
  afterEach(async () => {
    await page?.close();
  });

  const tasks = () => database.db.prisma.task.count();
  const port = () => new URL(server.url).port;

  it('a page on another origin can neither write nor read nor subscribe', async () => {
    await page.goto(hostileUrl);
    const results = (await page.evaluate(`window.attack(${JSON.stringify(server.url)})`)) as Record<string, string>;
    console.log('attacks from another origin:', results);
    // CORS is off: the preflight of a JSON POST fails, and a cross-origin GET cannot be read.
    expect(results.fetchJson).toBe('blocked: TypeError');
    expect(results.fetchGet).toBe('blocked: TypeError');
    expect(results.fetchNoCors).toBe('opaque opaque');
    // The upgrade is refused (Chromium reports 1006: the socket never opened).
    expect(results.webSocket).toBe('closed 1006');
    expect(results.eventSource).toBe('error');
    expect(await tasks()).toBe(0);
  });

  it('a DNS-rebinding page (same origin as far as the browser knows) is refused by Host', async () => {
    const rebound = `http://${REBOUND}:${port()}`;
    // Any page of that origin stands for the attacker's page, loaded before the name was rebound.
    await page.goto(`${rebound}/health`);
    await page.evaluate(ATTACKS);
    const results = (await page.evaluate(`window.attack(${JSON.stringify(`${rebound}/graphql`)})`)) as Record<string, string>;
    console.log('attacks from a rebinding page:', results);
    // Same origin, so the browser lets the page read the answers: they are refusals.
    expect(results.fetchJson).toMatch(/^status 403 .*ALLOWED_HOSTS.*"FORBIDDEN"/);
    expect(results.fetchGet).toMatch(/^status 403 .*"FORBIDDEN"/);
    expect(results.webSocket).toMatch(/^closed 4403/);
    expect(results.eventSource).toBe('error');
    expect(await tasks()).toBe(0);
  });

  it('the dashboard on its own origin still works: live, and showing a new task', async () => {
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await page.goto(server.url.replace(/\/graphql$/, '/'));
    await page.locator('[data-testid=connection][data-state=live]').waitFor();
    const { createTask } = await server.ok('mutation { createTask(input: { name: "seen on the board" }) { id } }');
    await page.locator(`[data-testid=task-row][data-task-id="${createTask.id}"]`).waitFor();
    // And it acts: its own origin may write.
    const written = await page.evaluate(async () => {
      const response = await fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ viewer { name } }' }),
      });
      return response.status;
    });
    expect(written).toBe(200);
    expect(problems).toEqual([]);
  });
});
