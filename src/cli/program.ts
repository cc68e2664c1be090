import { Command, Option } from 'commander';
import { endpointUrl } from './arguments.js';
import { cleanupCommand } from './commands/cleanup.js';
import { deleteCommand } from './commands/delete.js';
import { fixStuckCommand } from './commands/fix-stuck.js';
import { forceCommand } from './commands/force.js';
import { listCommand } from './commands/list.js';
import { pruneCommand } from './commands/prune.js';
import { limitCommand, pauseCommand, queuesCommand, resumeCommand } from './commands/queues.js';
import { submitCommand } from './commands/submit.js';
import { statsCommand } from './commands/stats.js';
import { stopCommand } from './commands/stop.js';
import { stuckCommand } from './commands/stuck.js';
import { tokenCommand } from './commands/token.js';
import { watchCommand } from './commands/watch.js';
import { examples } from './output.js';

/** Every subcommand; a new one is a file in commands/ and a line here. */
const commands = [
  listCommand,
  stuckCommand,
  stopCommand,
  deleteCommand,
  forceCommand,
  cleanupCommand,
  statsCommand,
  watchCommand,
  fixStuckCommand,
  tokenCommand,
  queuesCommand,
  pauseCommand,
  resumeCommand,
  limitCommand,
  submitCommand,
  pruneCommand,
];

/** The `taskwarden` program. It never exits by itself: errors are thrown for src/cli/main.ts to report. */
export function createProgram(): Command {
  const program = new Command('taskwarden')
    .description("Taskwarden's operator command line: list tasks, find and repair stuck ones, watch them live.")
    .addOption(new Option('--url <url>', 'the GraphQL endpoint').env('TASKWARDEN_URL').default('http://localhost:4000/graphql').argParser(endpointUrl))
    .addOption(new Option('--token <token>', 'API token').env('TASKWARDEN_TOKEN'))
    .option('--json', 'machine-readable output: one JSON document on stdout (watch: one per line); errors as JSON on stderr')
    .option('--no-color', 'no colours (NO_COLOR=1 does the same)')
    .addHelpText(
      'after',
      `${examples('taskwarden list --status running', 'taskwarden stuck --timeout 60', 'taskwarden fix-stuck --dry-run', 'taskwarden watch', 'taskwarden --url http://tw.internal:4000/graphql stats --json')}` +
        '\nExit codes: 0 ok, 1 refused (the reason is printed), 2 usage error, 3 server unreachable.\n',
    )
    .exitOverride()
    .configureOutput({ outputError: () => {} }) // main.ts prints every error, one line (or JSON)
    .showSuggestionAfterError();
  for (const command of commands) program.addCommand(command().copyInheritedSettings(program));
  return program;
}
