// `taskwarden`: the operator command line (bin/taskwarden.js, or `npm run cli --`).
import { CommanderError } from 'commander';
import { describeFailure, ExitCode } from './errors.js';
import { jsonText, printable } from './output.js';
import { createProgram } from './program.js';

/** Runs one command line; returns the exit code. Every error becomes one line on stderr (JSON under --json). */
export async function run(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? ExitCode.ok);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
      if (error.code === 'commander.help') return ExitCode.usage; // no command given: the help went to stderr
    }
    const failure = describeFailure(error);
    const args = argv.slice(2);
    if (args.includes('--json')) {
      process.stderr.write(`${jsonText({ error: { code: failure.code, message: failure.message } })}\n`);
    } else {
      const command = program.commands.find((c) => args.includes(c.name()));
      const hint = failure.exitCode === ExitCode.usage ? ` (see taskwarden ${command ? `${command.name()} ` : ''}--help)` : '';
      // A server's message may quote what was sent (a name, an id): shown, not obeyed.
      process.stderr.write(`taskwarden: ${printable(failure.message)}${hint}\n`);
    }
    return failure.exitCode;
  }
}

const code = await run(process.argv);
process.exitCode = code;
// Whatever a library left open (a socket that lingers, a timer) must not keep the shell waiting.
setTimeout(() => process.exit(code), 2000).unref();
