import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDatabase, type TestDatabase } from './support/databases.js';
import { startTestServer, type TestServer } from './support/server.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const python = process.env.PYTHON ?? 'python3';
const found = spawnSync(python, ['--version'], { encoding: 'utf8' });
const hasPython = found.status === 0;
if (!hasPython) console.warn(`NOTICE: ${python} was not found: the Python client's tests are skipped (CI requires them)`);

/**
 * The Python client's unittest suite, against a real Taskwarden (HTTP on port 0, PGlite,
 * a real monitor on a short schedule) and real worker processes. One token per role, so the
 * suite exercises authentication throughout. The monitor only records stuck episodes
 * (action none): the suite reads them from task histories.
 */
describe.skipIf(!hasPython)('the Python client', () => {
  let database: TestDatabase;
  let server: TestServer;
  const secret = (role: string) => `py-${role}-${randomBytes(12).toString('hex')}`;
  const tokens = { admin: secret('admin'), worker: secret('worker'), viewer: secret('viewer') };
  const settings = { stuckTimeoutSeconds: 3, monitorIntervalMs: 300 };

  beforeAll(async () => {
    database = await openTestDatabase('pglite');
    server = await startTestServer(
      database,
      {
        MONITOR_ENABLED: 'true',
        MONITOR_INTERVAL: `${settings.monitorIntervalMs}ms`,
        HEARTBEAT_TIMEOUT: `${settings.stuckTimeoutSeconds}s`,
        STALL_TIMEOUT: `${settings.stuckTimeoutSeconds}s`,
        MONITOR_ACTION: 'none',
        TASKWARDEN_TOKENS: Object.entries(tokens)
          .map(([role, token]) => `py-${role}:${role}:${token}`)
          .join(','),
      },
      { realTime: true },
    );
  }, 120_000); // PGlite's migrations take a while on a loaded machine
  afterAll(async () => {
    await server?.stop();
    await database?.close();
  });

  it(`passes its unittest suite (${found.stdout?.trim() || 'no python'})`, { timeout: 240_000 }, async () => {
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(
        python,
        ['-m', 'unittest', 'discover', '--buffer', '--start-directory', 'clients/python/tests', '--top-level-directory', 'clients/python', '-v'],
        {
          cwd: root,
          env: {
            ...process.env,
            PYTHONPATH: 'clients/python',
            PYTHONUNBUFFERED: '1',
            TASKWARDEN_URL: server.url,
            TASKWARDEN_ADMIN_TOKEN: tokens.admin,
            TASKWARDEN_WORKER_TOKEN: tokens.worker,
            TASKWARDEN_VIEWER_TOKEN: tokens.viewer,
            TASKWARDEN_STUCK_TIMEOUT: String(settings.stuckTimeoutSeconds),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      child.on('close', (code) => resolve({ code, output }));
    });
    // unittest reports on stderr: "Ran N tests" then "OK" or "FAILED (...)". A skipped case hides a gap, so none may skip.
    expect(code, output).toBe(0);
    expect(output, output).toMatch(/^Ran \d+ tests? in/m);
    expect(output, output).not.toMatch(/skipped|expected failure/i);
  });
});
