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
    // A priority-10 run submitted mid-sweep is claimed before every backtest already waiting; a chain runs step by step.
    expect(stdout).toMatch(/PRIORITY\s+Research: SMA 5\/20 AAPL \(priority 10\) submitted while \d+ backtests wait/);
    expect(stdout).toMatch(/│ Research: SMA 5\/20 AAPL \(priority 10\) │ priority 10 │ COMPLETED \(first of \d+ waiting\)\s+│ COMPLETED │ .* │ yes │/);
    expect(stdout).toMatch(/│ Walk-forward SPY: report\s+│ chain 3\/3\s+│ COMPLETED \(after its step\)\s+│ COMPLETED │ .* │ yes │/);
    // One row per task in the final table (8 backtests, 3 chain steps, the priority run), each matching what was injected.
    expect(stdout.match(/│ yes │/g)).toHaveLength(12);
  });
});
