import { Command, Option } from 'commander';
import { taskStatus } from '../arguments.js';
import { examples, printable, status, withClient } from '../output.js';

const forceStatuses = ['CANCELLED', 'FAILED'] as const;

export const forceCommand = () =>
  new Command('force')
    .description('Force-completes a running task, whatever its worker is doing (for a stuck task or a gone worker)')
    .requiredOption('--task-id <id>', 'the task')
    .addOption(
      new Option('--status <status>', 'what it becomes: cancelled or failed')
        .argParser((value) => taskStatus(value, forceStatuses))
        .default('CANCELLED', 'cancelled'),
    )
    .option('--reason <text>', 'recorded in the task history (and as the error, for failed)', 'force-completed from the command line')
    .addHelpText(
      'after',
      examples(
        'taskwarden force --task-id 17d5f40b-d2a1-4b5e-8b8f-a10a93d23c33',
        'taskwarden force --task-id 17d5f40b-d2a1-4b5e-8b8f-a10a93d23c33 --status failed --reason "worker host lost"',
      ),
    )
    .action(
      withClient<{ taskId: string; status: (typeof forceStatuses)[number]; reason: string }>(async ({ client, out }, options) => {
        const task = await client.forceComplete(options.taskId, { status: options.status, reason: options.reason });
        out.result({ task }, () => `Force-completed "${printable(task.name)}" (${task.id}): it is ${status(out.c, task.status)} now.`);
      }),
    );
