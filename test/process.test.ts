import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runServerToExit, spawnServer } from './support/process.js';

const dirs: string[] = [];
const tempDataDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskwarden-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const post = async (url: string, query: string) =>
  (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) })).json()) as any;

describe('the server process', () => {
  it('refuses a bad setting with one line naming it, and exit code 2', async () => {
    const { code, output } = await runServerToExit({ MONITOR_INTERVAL: 'often', DATA_DIR: tempDataDir() });
    expect(code).toBe(2);
    expect(output.trim()).toBe('taskwarden: MONITOR_INTERVAL="often": expected a duration such as 30m, 90s or 1h');
  });

  // Three server processes one after the other: about 18 s alone on 2 cores, past 30 s beside the browser tests.
  it('keeps data across restarts, refuses a second server on the same data, and drains on SIGTERM', { timeout: 90_000 }, async () => {
    const dataDir = tempDataDir();
    const first = await spawnServer({ DATA_DIR: dataDir });
    const created = await post(first.url, 'mutation { createTask(input: { name: "survives restarts" }) { id } }');
    const id = created.data.createTask.id;

    // A second server on the same directory would corrupt it: it must refuse, clearly.
    const second = await runServerToExit({ DATA_DIR: dataDir });
    expect(second.code).toBe(1);
    expect(second.output).toMatch(/^taskwarden: The database in .* is in use by process \d+/);

    // An open subscription is closed with 1001 (going away) when the server drains.
    const client = createClient({ url: first.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
    const connected = new Promise((resolve) => client.on('connected', resolve));
    client.subscribe({ query: 'subscription { taskUpdated { id } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    await connected;
    first.child.kill('SIGTERM');
    expect(await closed).toBe(1001);
    expect(await first.exited).toBe(0);
    await client.dispose();

    const restarted = await spawnServer({ DATA_DIR: dataDir });
    const again = await post(restarted.url, `{ task(id: "${id}") { name status } }`);
    expect(again.data.task).toEqual({ name: 'survives restarts', status: 'PENDING' });
    restarted.child.kill('SIGINT');
    expect(await restarted.exited).toBe(0);
  });
});
