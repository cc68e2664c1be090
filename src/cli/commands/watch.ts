import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { Command } from 'commander';
import {
  isTerminal,
  type StuckTaskDetectedSubscription,
  type TaskwardenClient,
  type TaskFieldsFragment,
  type TaskUpdatedSubscription,
} from '../../client/index.js';
import { CliError } from '../errors.js';
import { clockTime, duration, examples, label, printable, status, statusColor, withClient, type Output } from '../output.js';

type TaskEvent = TaskUpdatedSubscription['taskUpdated'];
type StuckAlert = StuckTaskDetectedSubscription['stuckTaskDetected'];

/** How `watch` shows what arrives: progress bars on a terminal, lines in a pipe, NDJSON under --json. */
interface WatchView {
  connection(state: 'connected' | 'closed'): void;
  snapshot(tasks: TaskFieldsFragment[]): void;
  event(event: TaskEvent): void;
  alert(alert: StuckAlert): void;
  stop(): void;
}

export const watchCommand = () =>
  new Command('watch')
    .description('A live view over the subscriptions: a progress bar per running task, and stuck alerts as they arrive')
    .option('--task-id <id>', 'only this task; ends when it finishes')
    .addHelpText(
      'after',
      `${examples('taskwarden watch', 'taskwarden watch --task-id 17d5f40b-d2a1-4b5e-8b8f-a10a93d23c33', 'taskwarden watch --json | jq -c \'select(.type == "stuck")\'')}` +
        '\nOn a terminal it draws progress bars; in a pipe it prints one line per change. Ctrl-C stops it.\n',
    )
    .action(
      withClient<{ taskId?: string }>(
        async ({ client, out, options: global }, options) => {
          const view = out.json ? ndjsonView(out) : textView(out, global.url, process.stdout.isTTY ? progressBars(out) : undefined);
          // The snapshot comes first: a server that is down is reported at once (exit code 3).
          let lastEventId: string | undefined; // where the stream starts: after the snapshot of --task-id
          let snapshot: TaskFieldsFragment[];
          if (options.taskId) {
            const { events, ...task } = await requireTask(client, options.taskId);
            lastEventId = events.at(-1)?.id; // the subscription replays whatever happens after it
            snapshot = [task];
          } else {
            snapshot = await runningTasks(client);
          }
          view.snapshot(snapshot);
          if (options.taskId && isTerminal(snapshot[0]!.status)) return;

          let finish!: () => void;
          let fail!: (error: unknown) => void;
          const done = new Promise<void>((resolve, reject) => {
            finish = resolve;
            fail = reject;
          });
          process.once('SIGINT', finish).once('SIGTERM', finish);

          // Updates resume after the last event seen (after a reconnect, or when the server
          // ended the stream because this terminal fell behind), so nothing is missed.
          const stopUpdates = client.followTaskUpdates(
            { id: options.taskId, afterEventId: lastEventId },
            {
              next: (event) => {
                view.event(event);
                if (options.taskId && (isTerminal(event.toStatus) || event.type === 'DELETED')) finish();
              },
              error: fail,
            },
          );
          const unsubscribeAlerts = client.onStuckTask({
            next: (alert) => {
              if (!options.taskId || alert.task.id === options.taskId) view.alert(alert);
            },
            error: fail,
          });
          let state: 'connected' | 'closed' | undefined;
          const stopListening = client.onConnection((next) => {
            if (next === state) return; // each failed reconnect attempt closes again: report the drop once
            state = next;
            view.connection(next);
          });

          try {
            await done;
          } finally {
            process.off('SIGINT', finish).off('SIGTERM', finish);
            stopListening();
            stopUpdates();
            unsubscribeAlerts();
            view.stop();
          }
        },
        { subscriptions: true },
      ),
    );

async function requireTask(client: TaskwardenClient, id: string) {
  const task = await client.getTask(id);
  if (!task) throw new CliError('NOT_FOUND', `No task ${id}.`);
  return task;
}

async function runningTasks(client: TaskwardenClient): Promise<TaskFieldsFragment[]> {
  const tasks: TaskFieldsFragment[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await client.listTasks({ status: ['RUNNING'], first: 100, after });
    tasks.push(...page.edges.map((edge) => edge.node));
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return tasks;
    after = page.pageInfo.endCursor;
  }
}

function ndjsonView(out: Output): WatchView {
  return {
    connection: (state) => out.ndjson({ type: 'connection', state }),
    snapshot: (tasks) => out.ndjson({ type: 'snapshot', tasks }),
    event: (event) => out.ndjson({ type: 'event', event }),
    alert: (alert) => out.ndjson({ type: 'stuck', alert }),
    stop: () => {},
  };
}

/**
 * People's view: one line per change (a pipe), or on a terminal a progress bar
 * per running task with the other changes and the alerts as lines above them.
 */
function textView(out: Output, url: string, bars?: ProgressBars): WatchView {
  const { c } = out;
  const log = bars ? bars.log : out.say;
  const names = new Map<string, string>(); // a deletion carries no task, so no name
  let connections = 0;
  const taskLine = (task: TaskFieldsFragment) =>
    `${status(c, task.status, 9)} ${`${Math.round(task.progress)}%`.padStart(4)} ${printable(task.name)}${task.message ? ` ${c.dim(printable(task.message))}` : ''}`;
  const eventLine = (event: TaskEvent) => {
    const type = event.toStatus && event.type !== 'PROGRESS' ? statusColor(c, event.toStatus)(event.type.padEnd(9)) : event.type.padEnd(9);
    const detail =
      event.type === 'PROGRESS'
        ? `${Math.round(event.progress ?? 0)}%${event.message ? ` ${printable(event.message)}` : ''}`
        : c.dim(printable(`by ${event.actor}${event.reason ? `: ${event.reason}` : ''}`));
    return `${c.dim(clockTime(event.at))} ${type} ${printable(names.get(event.taskId) ?? event.taskId)} ${detail}`;
  };
  return {
    connection(state) {
      if (state === 'closed') log(c.yellow('connection lost; reconnecting...'));
      else if (connections++ > 0) log(c.green('reconnected'));
    },
    snapshot(tasks) {
      log(c.dim(`Watching ${url} (Ctrl-C to stop)`));
      for (const task of tasks) {
        names.set(task.id, task.name);
        if (bars && task.status === 'RUNNING') bars.show(task);
        else log(taskLine(task));
      }
      if (tasks.length === 0) log('No task is running.');
    },
    event(event) {
      if (event.task) names.set(event.taskId, event.task.name);
      if (!bars || event.type !== 'PROGRESS') log(eventLine(event));
      if (event.task?.status === 'RUNNING') bars?.show(event.task);
      else bars?.drop(event.taskId);
    },
    alert(alert) {
      names.set(alert.task.id, alert.task.name);
      const { task } = alert;
      log(
        `${c.dim(clockTime(alert.detectedAt))} ${c.red('STUCK    ')} ${printable(task.name)}: ${alert.reason} for ${duration(alert.stuckForSeconds)} -> ${alert.actionTaken} (${status(c, task.status)})`,
      );
      if (task.status !== 'RUNNING') bars?.drop(task.id);
    },
    stop: () => bars?.stop(),
  };
}

interface ProgressBars {
  log(line: string): void;
  show(task: TaskFieldsFragment): void;
  drop(id: string): void;
  stop(): void;
}

function progressBars(out: Output): ProgressBars {
  const bars = new MultiBar(
    { format: '{status} {bar} {percentage}% | {name} {message}', stream: process.stdout, hideCursor: true, barsize: 24, autopadding: true },
    Presets.shades_classic,
  );
  const byTask = new Map<string, SingleBar>();
  return {
    log: (line) => bars.log(`${line}\n`),
    show(task) {
      const payload = { status: status(out.c, task.status), name: label(task.name).padEnd(40), message: out.c.dim(printable(task.message ?? '')) };
      const bar = byTask.get(task.id);
      if (bar) bar.update(Math.round(task.progress), payload);
      else byTask.set(task.id, bars.create(100, Math.round(task.progress), payload));
    },
    drop(id) {
      const bar = byTask.get(id);
      if (bar) bars.remove(bar);
      byTask.delete(id);
    },
    stop: () => bars.stop(),
  };
}
