import { Command, InvalidArgumentError } from 'commander';
import type { KindQueueFieldsFragment } from '../../generated/graphql/graphql.js';
import { duration, examples, label, withClient, type Output } from '../output.js';

/** Each kind's queue: what waits (ready, delayed, blocked), what runs, its limit and whether it is paused. */
export function queueTable(out: Output, queues: readonly KindQueueFieldsFragment[]): string {
  if (queues.length === 0) return 'No queues: nothing pending or running, and no kind has a limit or a pause.';
  return out.table(
    ['kind', 'ready', 'delayed', 'blocked', 'running', 'limit', 'paused', 'oldest ready'],
    queues.map((q) => [
      label(q.kind),
      q.pending,
      q.delayed,
      q.blocked,
      q.limit !== null && q.running >= q.limit ? out.c.yellow(String(q.running)) : q.running,
      q.limit ?? '-',
      q.paused ? out.c.yellow('paused') : '-',
      q.pending ? duration(q.oldestReadyAgeSeconds) : '-',
    ]),
  );
}

export const queuesCommand = () =>
  new Command('queues')
    .description(
      'Each kind: tasks ready, delayed, blocked by a dependency, running; its limit, whether it is paused, how long the oldest ready task has waited',
    )
    .addHelpText('after', examples('taskwarden queues', 'taskwarden queues --json'))
    .action(
      withClient(async ({ client, out }) => {
        const queues = await client.queues();
        out.result({ queues }, () => queueTable(out, queues));
      }),
    );

// Commander hands positional arguments before the options: each command passes them on to withClient as its options.

export const pauseCommand = () =>
  new Command('pause')
    .description('Pauses a kind: claims of it get nothing until it is resumed (running tasks go on)')
    .argument('<kind>', 'the task kind')
    .addHelpText('after', examples('taskwarden pause optimize'))
    .action((kind: string, _options: unknown, command: Command) =>
      withClient<{ kind: string }>(async ({ client, out }, { kind }) => {
        const queue = await client.pauseKind(kind);
        out.result(
          { queue },
          () => `Paused "${label(queue.kind)}": ${queue.running} running go on, ${queue.pending + queue.delayed + queue.blocked} pending wait.`,
        );
      })({ kind }, command),
    );

export const resumeCommand = () =>
  new Command('resume')
    .description('Resumes a paused kind')
    .argument('<kind>', 'the task kind')
    .addHelpText('after', examples('taskwarden resume optimize'))
    .action((kind: string, _options: unknown, command: Command) =>
      withClient<{ kind: string }>(async ({ client, out }, { kind }) => {
        const queue = await client.resumeKind(kind);
        out.result({ queue }, () => `Resumed "${label(queue.kind)}": ${queue.pending} ready to claim.`);
      })({ kind }, command),
    );

export const limitCommand = () =>
  new Command('limit')
    .description('At most <n> tasks of a kind run at once, across every instance; "none" lifts the limit (running tasks are not touched)')
    .argument('<kind>', 'the task kind')
    .argument('<n|none>', 'the limit', limitArgument)
    .addHelpText('after', examples('taskwarden limit optimize 4', 'taskwarden limit optimize none'))
    .action((kind: string, limit: number | null, _options: unknown, command: Command) =>
      withClient<{ kind: string; limit: number | null }>(async ({ client, out }, options) => {
        const queue = await client.setKindLimit(options.kind, options.limit);
        out.result({ queue }, () =>
          queue.limit === null
            ? `"${label(queue.kind)}" has no limit now (${queue.running} running).`
            : `At most ${queue.limit} "${label(queue.kind)}" tasks run at once now (${queue.running} running).`,
        );
      })({ kind, limit }, command),
    );

export function limitArgument(value: string): number | null {
  if (value.trim().toLowerCase() === 'none') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number of 0 or more, or "none"');
  return n;
}
