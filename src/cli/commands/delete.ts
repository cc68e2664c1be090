import { Command } from 'commander';
import { examples, withClient } from '../output.js';

export const deleteCommand = () =>
  new Command('delete')
    .description('Deletes a finished task (COMPLETED, FAILED or CANCELLED); its history is kept')
    .requiredOption('--task-id <id>', 'the task')
    .addHelpText(
      'after',
      `${examples('taskwarden delete --task-id 17d5f40b-d2a1-4b5e-8b8f-a10a93d23c33')}\nA running task is refused (exit code 1): stop or force-complete it first.\n`,
    )
    .action(
      withClient<{ taskId: string }>(async ({ client, out }, options) => {
        const deleted = await client.deleteTask(options.taskId);
        out.result({ deleted }, () => `Deleted ${deleted}; its history is kept.`);
      }),
    );
