import { Command } from 'commander';
import { minutes } from '../arguments.js';
import { examples, judgedBy, plural, withClient } from '../output.js';
import { stuckColumns, taskTable } from '../task-table.js';

export const stuckCommand = () =>
  new Command('stuck')
    .description('Running tasks that are stuck under this timeout, longest stuck first, with the reason')
    .option(
      '--timeout <minutes>',
      "one timeout for everything: no heartbeat or no progress for this long counts as stuck (minutes, or 90s, 2h); without it, each task's own clocks and the monitor's",
      minutes,
    )
    .addHelpText('after', examples('taskwarden stuck', 'taskwarden stuck --timeout 60', 'taskwarden stuck --timeout 90s --json'))
    .action(
      withClient<{ timeout?: number }>(async ({ client, out }, options) => {
        const tasks = await client.stuckTasks(options.timeout);
        out.result({ timeoutMinutes: options.timeout ?? null, tasks }, () =>
          tasks.length === 0
            ? `No stuck tasks (${judgedBy(options.timeout)}).`
            : `${taskTable(out, tasks, stuckColumns)}\n${plural(tasks.length, 'stuck task')} (${judgedBy(options.timeout)}).`,
        );
      }),
    );
