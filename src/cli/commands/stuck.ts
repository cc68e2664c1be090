import { Command } from 'commander';
import { minutes } from '../arguments.js';
import { examples, minutesText, plural, withClient } from '../output.js';
import { stuckColumns, taskTable } from '../task-table.js';

export const stuckCommand = () =>
  new Command('stuck')
    .description('Running tasks that are stuck under this timeout, longest stuck first, with the reason')
    .option('--timeout <minutes>', 'no heartbeat or no progress for this long counts as stuck (minutes, or 90s, 2h)', minutes, 30)
    .addHelpText('after', examples('taskwarden stuck', 'taskwarden stuck --timeout 60', 'taskwarden stuck --timeout 90s --json'))
    .action(
      withClient<{ timeout: number }>(async ({ client, out }, options) => {
        const tasks = await client.stuckTasks(options.timeout);
        out.result({ timeoutMinutes: options.timeout, tasks }, () =>
          tasks.length === 0
            ? `No stuck tasks (timeout ${minutesText(options.timeout)}).`
            : `${taskTable(out, tasks, stuckColumns)}\n${plural(tasks.length, 'stuck task')} (timeout ${minutesText(options.timeout)}).`,
        );
      }),
    );
