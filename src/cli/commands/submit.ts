import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import type { CreateTaskInput } from '../../client/index.js';
import { CliError, ExitCode } from '../errors.js';
import { examples, plural, withClient } from '../output.js';
import { listColumns, taskTable } from '../task-table.js';

/** One createTasks call takes at most this many (the server's bound). */
const MAX_BATCH = 1000;

/**
 * Reads a JSON Lines file of CreateTaskInput objects (blank lines and lines
 * starting with # are skipped). A line that is no JSON object is refused with
 * its line number, before anything is sent.
 */
export async function readTaskLines(path: string): Promise<CreateTaskInput[]> {
  const text =
    path === '-'
      ? await readStdin()
      : await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
          throw usage(`cannot read ${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
        });
  const inputs: CreateTaskInput[] = [];
  text.split('\n').forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (error) {
      throw usage(`${path}:${i + 1}: not JSON (${(error as Error).message})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw usage(`${path}:${i + 1}: expected one task as a JSON object, such as {"name": "SMA AAPL"}`);
    inputs.push(value as CreateTaskInput);
  });
  if (inputs.length === 0) throw usage(`${path}: no tasks in it`);
  if (inputs.length > MAX_BATCH) throw usage(`${path}: ${inputs.length} tasks; one batch takes at most ${MAX_BATCH} (split the file)`);
  return inputs;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const submitCommand = () =>
  new Command('submit')
    .description('Creates the tasks of a JSON Lines file in one batch: all or none. Lines with an idempotencyKey make submitting twice harmless')
    .requiredOption(
      '--file <path>',
      'one task per line, as createTask takes it (name, kind, params, priority, runAt, idempotencyKey, dependsOn, dependsOnIndex, ...); - reads stdin',
    )
    .addHelpText(
      'after',
      examples('taskwarden submit --file sweep.jsonl', 'taskwarden submit --file - --json < sweep.jsonl') +
        '\nA line: {"name": "SMA AAPL 10/50", "kind": "backtest", "params": {"fast": 10}, "priority": 5, "idempotencyKey": "sweep-42-aapl"}\n' +
        'dependsOnIndex counts the task lines of the file from 0.\n',
    )
    .action(
      withClient<{ file: string }>(async ({ client, out }, options) => {
        const inputs = await readTaskLines(options.file);
        const tasks = await client.createTasks(inputs);
        out.result({ tasks }, () => `${taskTable(out, tasks, listColumns)}\nSubmitted ${plural(tasks.length, 'task')} in one batch.`);
      }),
    );

const usage = (message: string) => new CliError('BAD_FILE', message, ExitCode.usage);
