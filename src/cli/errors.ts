import { CommanderError } from 'commander';
import { TaskwardenClientError } from '../client/index.js';
import { TaskwardenError } from '../errors.js';

/** The exit codes every command keeps to (documented in docs/cli.md). */
export const ExitCode = {
  ok: 0,
  /** The operation was refused or failed: the server's (or the database's) reason is printed. */
  refused: 1,
  /** The command line itself is wrong: unknown option, missing --task-id, bad value. */
  usage: 2,
  /** Taskwarden did not answer at --url. */
  unreachable: 3,
} as const;

/** A failure the CLI itself detects, with the code it reports under `--json`. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number = ExitCode.refused,
  ) {
    super(message);
  }
}

export interface FailureReport {
  code: string;
  message: string;
  exitCode: number;
}

/** The one place that turns anything thrown into a code, one line of text, and an exit code. */
export function describeFailure(error: unknown): FailureReport {
  if (error instanceof CliError) return { code: error.code, message: error.message, exitCode: error.exitCode };
  if (error instanceof CommanderError) {
    // "unknown command 'lst'\n(Did you mean list?)": one line
    return { code: 'USAGE', message: error.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' '), exitCode: ExitCode.usage };
  }
  if (error instanceof TaskwardenClientError) {
    // HTTP_ERROR: something answered at --url, but not Taskwarden's GraphQL endpoint.
    const unreachable = error.isNetworkError || error.code === 'HTTP_ERROR';
    return {
      code: error.code,
      message: unreachable ? `${error.message} (is the server running? set --url or TASKWARDEN_URL)` : error.message,
      exitCode: unreachable ? ExitCode.unreachable : ExitCode.refused,
    };
  }
  if (error instanceof TaskwardenError) {
    return { code: error.code, message: error.message, exitCode: error.code === 'CONFIG_INVALID' ? ExitCode.usage : ExitCode.refused };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'UNEXPECTED', message: firstLine(message), exitCode: ExitCode.refused };
}

function firstLine(text: string) {
  return text.split('\n', 1)[0] ?? text;
}
