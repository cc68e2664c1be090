import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// A newcomer's machine has no Chromium: the browser tests must skip themselves and say how to run them,
// and the run must still pass. scripts/without-browser.sh hides every browser in a private mount namespace.
const canHide = process.getuid?.() === 0 && spawnSync('unshare', ['--mount', 'true']).status === 0;

describe.skipIf(!canHide)('without a browser on the machine', () => {
  it('the dashboard suite passes, skipped, with one line that says how to enable it', () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(VITEST|TEST_)/.test(name)));
    const run = spawnSync('scripts/without-browser.sh', ['npx', 'vitest', 'run', 'test/dashboard.test.ts', '--maxWorkers=1'], {
      env: { ...env, NO_COLOR: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    const output = run.stdout + run.stderr;
    expect(run.status, output).toBe(0);
    const notices = output.split('\n').filter((line) => line.startsWith('Skipping the browser tests'));
    expect(notices, output).toHaveLength(1);
    expect(notices[0]).toContain('set CHROMIUM=/path/to/chrome');
    expect(output).toMatch(/Test Files\s+1 skipped/);
  }, 150_000);
});
