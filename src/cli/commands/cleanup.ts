import { Command } from 'commander';
import { minutes } from '../arguments.js';
import { examples, judgedBy, plural, withClient } from '../output.js';
import { stuckColumns, taskTable } from '../task-table.js';

export const cleanupCommand = () =>
  new Command('cleanup')
    .description('Finds stuck tasks and, with --auto-fix, cancels them (and alerts, as the monitor would)')
    .option(
      '--timeout <minutes>',
      "one timeout for everything: no heartbeat or no progress for this long counts as stuck (minutes, or 90s, 2h); without it, each task's own clocks and the monitor's",
      minutes,
    )
    .option('--auto-fix', 'cancel them; without it, only report what would be fixed')
    .addHelpText('after', examples('taskwarden cleanup', 'taskwarden cleanup --timeout 60 --auto-fix', 'taskwarden cleanup --auto-fix --json'))
    .action(
      withClient<{ timeout?: number; autoFix?: boolean }>(async ({ client, out }, options) => {
        const report = await client.cleanupStuck({ timeoutMinutes: options.timeout, autoFix: Boolean(options.autoFix) });
        out.result(report, () => {
          if (report.found.length === 0) return `No stuck tasks (${judgedBy(report.timeoutMinutes)}): nothing to fix.`;
          const found = `${taskTable(out, report.found, stuckColumns)}\n`;
          return report.autoFix
            ? `${found}Fixed ${report.fixed.length} of ${plural(report.found.length, 'stuck task')} (action ${report.action}).`
            : `${found}Would fix ${plural(report.found.length, 'task')} (${report.action}). Run again with --auto-fix to do it.`;
        });
      }),
    );
