import { createInterface } from 'node:readline/promises';

/**
 * Asks a yes/no question on stderr and reads the answer from stdin (a terminal
 * or a pipe). Anything but y/yes, and no answer at all (stdin closed), is no.
 */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string | undefined>((resolve) => {
      rl.once('close', () => resolve(undefined));
      rl.question(`${question} [y/N] `).then(resolve, () => resolve(undefined));
    });
    if (!process.stdin.isTTY) process.stderr.write(`${answer ?? ''}\n`); // an answer from a pipe is not echoed
    return /^y(es)?$/i.test(answer?.trim() ?? '');
  } finally {
    rl.close();
  }
}
