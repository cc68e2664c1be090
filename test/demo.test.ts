import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm run demo', () => {
  it('catches every injected failure (a short run) and exits 0', { timeout: 150_000 }, async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/demo/main.ts', '--tasks', '8', '--workers', '3', '--plain', '--timeout', '120'], {
      env: { ...process.env, NO_COLOR: '1' },
      timeout: 140_000,
    }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
      // Show what the simulator saw: its table says which outcome did not match.
      throw new Error(`${error.message}\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
    });
    expect(stdout).toContain('Every injected failure was caught and handled.');
    expect(stdout).toMatch(/REFUSED\s+the zombie's late write .*LEASE_MISMATCH/);
    expect(stdout).toMatch(/STUCK\s+.*NO_PROGRESS/);
    expect(stdout).toMatch(/STUCK\s+.*NO_HEARTBEAT/);
    // One row per task in the final table, each matching what was injected.
    expect(stdout.match(/│ yes │/g)).toHaveLength(8);
  });
});
