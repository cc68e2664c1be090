import { Command } from 'commander';
import type { TaskStatus } from '../../client/index.js';
import { positiveInteger, statusList } from '../arguments.js';
import { examples, plural, withClient } from '../output.js';
import { listColumns, taskTable } from '../task-table.js';

interface ListOptions {
  status?: TaskStatus[];
  kind?: string;
  limit: number;
}

export const listCommand = () =>
  new Command('list')
    .description('Tasks, newest first, with progress, running time, last heartbeat and a stuck marker')
    .option('--status <statuses>', 'only these statuses, comma-separated: pending, running, completed, failed, cancelled', statusList)
    .option('--kind <kind>', 'only tasks of this kind (e.g. backtest)')
    .option('--limit <n>', 'show at most this many', positiveInteger, 50)
    .addHelpText(
      'after',
      examples('taskwarden list', 'taskwarden list --status running --kind backtest', 'taskwarden list --status failed,cancelled --limit 10 --json'),
    )
    .action(
      withClient<ListOptions>(async ({ client, out }, options) => {
        const page = await client.listTasks({ status: options.status, kind: options.kind, first: options.limit });
        const tasks = page.edges.map((edge) => edge.node);
        out.result({ totalCount: page.totalCount, tasks }, () =>
          tasks.length === 0
            ? 'No tasks.'
            : `${taskTable(out, tasks, listColumns)}\n${tasks.length < page.totalCount ? `Showing ${tasks.length} of ${page.totalCount} tasks (--limit).` : plural(tasks.length, 'task') + '.'}`,
        );
      }),
    );
