import { SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { minutes } from '../arguments.js';
import { confirm } from '../confirm.js';
import { CliError, describeFailure, ExitCode } from '../errors.js';
import { examples, label, minutesText, plural, printable, status, withClient, type Output } from '../output.js';
import { apiRepairer, type Repairer, type StuckItem } from '../repair.js';
import { stuckColumns, taskTable } from '../task-table.js';

interface FixStuckOptions {
  timeout: number;
  yes?: boolean;
  dryRun?: boolean;
  delete?: boolean;
  databaseUrl?: string;
}

interface Handled extends StuckItem {
  stopped: boolean;
  deleted: boolean;
  error: { code: string; message: string } | null;
}

export const fixStuckCommand = () =>
  new Command('fix-stuck')
    .description(
      "The seed's repair flow: check the server's health, find stuck tasks, stop them through the API, " +
        'or, when the server is down, in its database directly (same rules, history actor "cli"); optionally delete them',
    )
    .option('--timeout <minutes>', 'no heartbeat or no progress for this long counts as stuck (minutes, or 90s, 2h)', minutes, 60)
    .option('--yes', 'do not ask before changing anything')
    .option('--dry-run', 'only show what would be done')
    .option('--delete', 'delete the tasks once stopped (their history is kept)')
    .option(
      '--database-url <url>',
      'with the server down: this PostgreSQL database (default: DATABASE_URL, else the PGlite folder DATA_DIR, from the environment or .env)',
    )
    .addHelpText(
      'after',
      `${examples(
        'taskwarden fix-stuck --dry-run',
        'taskwarden fix-stuck --timeout 60 --yes',
        'taskwarden fix-stuck --yes --delete --json',
        'DATA_DIR=/srv/taskwarden/data taskwarden fix-stuck --yes   # the server is down',
      )}\nA PGlite folder that a running server holds is never touched: the command says which process holds it and exits 1.\n`,
    )
    .action(
      withClient<FixStuckOptions>(async ({ client, out }, options) => {
        const health = await checkHealth(client.url);
        let repairer: Repairer;
        if (health.up) {
          out.say(`Taskwarden at ${client.url} is up: working through the API.`);
          repairer = apiRepairer(client);
        } else {
          out.say(`Taskwarden at ${client.url} is unreachable (${health.reason}): working on its database directly.`);
          // Loaded only here: the database path brings Prisma and PGlite along.
          const { databaseRepairer } = await import('../repair-database.js');
          repairer = await databaseRepairer(options.databaseUrl);
          out.say(`Opened ${repairer.target}.`);
        }
        try {
          return await repair(repairer, out, options);
        } finally {
          await repairer.close();
        }
      }),
    );

async function checkHealth(url: string): Promise<{ up: true } | { up: false; reason: string }> {
  const health = new URL('health', url); // /health is a sibling of /graphql
  let response: Response;
  try {
    response = await fetch(health, { signal: AbortSignal.timeout(5000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return { up: false, reason: (error as Error).name === 'TimeoutError' ? 'no answer in 5s' : (cause?.code ?? (error as Error).message) };
  }
  await response.body?.cancel();
  if (!response.ok) {
    throw new CliError('HTTP_ERROR', `GET ${health} answered HTTP ${response.status}: is ${url} Taskwarden's GraphQL endpoint?`, ExitCode.unreachable);
  }
  return { up: true };
}

async function repair(repairer: Repairer, out: Output, options: FixStuckOptions): Promise<number> {
  const found: Handled[] = (await repairer.findStuck(options.timeout)).map((item) => ({ ...item, stopped: false, deleted: false, error: null }));
  const report = () => ({ via: repairer.via, target: repairer.target, timeoutMinutes: options.timeout, dryRun: Boolean(options.dryRun), tasks: found });
  if (found.length === 0) {
    out.result(report(), () => `No stuck tasks (timeout ${minutesText(options.timeout)}): nothing to do.`);
    return ExitCode.ok;
  }
  out.say(`${taskTable(out, found, stuckColumns)}\n${plural(found.length, 'stuck task')} (timeout ${minutesText(options.timeout)}).`);

  const [these, them] = found.length === 1 ? ['this task', 'it'] : [`these ${found.length} tasks`, 'them'];
  const what = `${these}${options.delete ? ` and delete ${them}` : ''}`;
  const where = repairer.via === 'api' ? 'through the API' : `in ${repairer.target}`;
  if (options.dryRun) {
    out.result(report(), () => `Dry run: would stop ${what} ${where}. Nothing was changed.`);
    return ExitCode.ok;
  }
  if (!options.yes && !(await confirm(`Stop ${what} ${where}?`))) {
    throw new CliError('NOT_CONFIRMED', 'Nothing was changed (not confirmed; --yes skips the question).');
  }

  let exitCode: number = ExitCode.ok;
  const each = (label: string, items: Handled[], step: (item: Handled) => Promise<void>) =>
    withProgress(out, label, items, async (item) => {
      try {
        await step(item);
      } catch (error) {
        const failure = describeFailure(error);
        item.error = { code: failure.code, message: failure.message };
        exitCode = Math.max(exitCode, failure.exitCode); // unreachable (3) outranks refused (1)
      }
    });
  await each('Stopping', found, async (item) => {
    item.status = await repairer.stop(item.id, `fix-stuck: ${item.stuckReason}`);
    item.stopped = true;
  });
  if (options.delete) {
    await each(
      'Deleting',
      found.filter((item) => item.stopped),
      async (item) => {
        await repairer.delete(item.id);
        item.deleted = true;
      },
    );
  }

  out.result(report(), () => {
    const outcome = (item: Handled) =>
      [item.stopped ? status(out.c, item.status) : '', item.deleted ? 'deleted' : '', item.error ? out.c.red(printable(item.error.message)) : '']
        .filter(Boolean)
        .join(', ');
    const stopped = found.filter((item) => item.stopped).length;
    const deleted = found.filter((item) => item.deleted).length;
    return (
      `${out.table(
        ['id', 'name', 'outcome'],
        found.map((item) => [printable(item.id), label(item.name), outcome(item)]),
      )}\n` + `Stopped ${stopped} of ${found.length}${options.delete ? `, deleted ${deleted}` : ''}.`
    );
  });
  return exitCode;
}

/** Runs `step` over the items, with a progress bar on a terminal. */
async function withProgress<T extends { name: string }>(out: Output, label: string, items: T[], step: (item: T) => Promise<void>) {
  const bar =
    !out.json && process.stderr.isTTY && items.length > 1
      ? new SingleBar({ format: `${label} {bar} {value}/{total} {name}`, stream: process.stderr, hideCursor: true, clearOnComplete: true })
      : undefined;
  bar?.start(items.length, 0, { name: '' });
  for (const item of items) {
    bar?.update({ name: printable(item.name) });
    await step(item);
    bar?.increment();
  }
  bar?.stop();
}
