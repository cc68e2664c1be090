// `npm run build && npm run start:prod`, as a deployment runs it: the compiled server in dist/ under
// plain node (no tsx, no Vite), serving the dashboard, the API and live updates.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-ws';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { spawnServer } from './support/process.js';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('a production build', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'taskwarden-prod-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('builds, then serves the dashboard, the API and subscriptions from dist/ with plain node', { timeout: 600_000 }, async () => {
    const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' });
    expect(build.status, `${build.stdout}\n${build.stderr}`).toBe(0);
    expect(existsSync(join(root, 'dist/main.js'))).toBe(true);
    expect(existsSync(join(root, 'web/dist/index.html'))).toBe(true);

    const server = await spawnServer({ DATA_DIR: dataDir, LOG_FORMAT: 'json' }, 120_000, ['dist/main.js']);
    try {
      const base = server.url.replace(/graphql$/, '');
      const page = await fetch(base);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<title>Taskwarden/);

      const post = async (query: string) =>
        (await (await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) })).json()) as any;
      const { data } = await post('mutation { createTask(input: { name: "from a production build" }) { id status } }');
      expect(data.createTask.status).toBe('PENDING');

      const client = createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
      const seen: string[] = [];
      const stopped = new Promise<void>((resolve, reject) =>
        client.subscribe<{ taskUpdated: { type: string } }>(
          { query: `subscription { taskUpdated(id: "${data.createTask.id}", afterEventId: "0") { type } }` },
          {
            next: ({ data: event }) => {
              seen.push(event!.taskUpdated.type);
              if (event!.taskUpdated.type === 'CANCELLED') resolve();
            },
            error: reject,
            complete: () => {},
          },
        ),
      );
      await post(`mutation { stopTask(id: "${data.createTask.id}", reason: "checked") { status } }`);
      await stopped;
      expect(seen).toEqual(['CREATED', 'CANCELLED']);
      await client.dispose();
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });
});
