import { Command } from 'commander';
import { examples, printable, status, withClient } from '../output.js';

export const stopCommand = () =>
  new Command('stop')
    .description('Stops a pending or running task (it becomes CANCELLED; its worker loses the lease)')
    .requiredOption('--task-id <id>', 'the task')
    .option('--reason <text>', 'recorded in the task history', 'stopped from the command line')
    .addHelpText(
      'after',
      examples(
        'taskwarden stop --task-id 17d5f40b-d2a1-4b5e-8b8f-a10a93d23c33',
        'taskwarden stop --task-id 17d5f40b-d2a1-4b5e-8b8f-a10a93d23c33 --reason "wrong parameters"',
      ),
    )
    .action(
      withClient<{ taskId: string; reason: string }>(async ({ client, out }, options) => {
        const task = await client.stopTask(options.taskId, options.reason);
        out.result({ task }, () => `Stopped "${printable(task.name)}" (${task.id}): it is ${status(out.c, task.status)} now.`);
      }),
    );
