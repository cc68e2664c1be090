#!/usr/bin/env node
// How long a start command takes until the server says it is ready: `npm start` (warm: the dashboard
// already built, the data folder already made) against `npm run start:prod`, run in turn.
//   node scripts/start-time.mjs [--runs 5]
// Each run starts the command in its own process group on a free port with a data folder made by a
// warm-up run, waits for the "Taskwarden is ready" line, then stops it. Prints each run and the medians.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1] || 5);
const commands = { 'npm start': ['npm', ['start', '--silent']], 'npm run start:prod': ['npm', ['run', 'start:prod', '--silent']] };
const dataDir = mkdtempSync(join(tmpdir(), 'taskwarden-start-'));

function readyAfter([command, args]) {
  const began = performance.now();
  const child = spawn(command, args, {
    cwd: root,
    detached: true,
    env: { ...process.env, PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk;
      if (!output.includes('Taskwarden is ready')) return;
      const ms = performance.now() - began;
      child.stdout.off('data', onData);
      child.on('exit', () => resolve(ms));
      process.kill(-child.pid, 'SIGTERM');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on(
      'exit',
      (code) => code !== null && !output.includes('Taskwarden is ready') && reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output}`)),
    );
  });
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const times = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
try {
  for (const command of Object.values(commands)) await readyAfter(command); // warm-up: builds what is missing, makes the data folder
  for (let run = 1; run <= runs; run++) {
    for (const [name, command] of Object.entries(commands)) {
      const ms = await readyAfter(command);
      times[name].push(ms);
      console.log(`run ${run}: ${name} ready after ${(ms / 1000).toFixed(2)} s`);
    }
  }
  for (const [name, values] of Object.entries(times)) {
    console.log(
      `${name}: median ${(median(values) / 1000).toFixed(2)} s (min ${(Math.min(...values) / 1000).toFixed(2)}, max ${(Math.max(...values) / 1000).toFixed(2)}) over ${runs} runs`,
    );
  }
  const ratios = times['npm start'].map((value, i) => value / times['npm run start:prod'][i]);
  console.log(`npm start / start:prod, run by run: median ${median(ratios).toFixed(2)}`);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
