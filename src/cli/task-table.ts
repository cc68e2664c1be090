import type { TaskFieldsFragment } from '../client/index.js';
import { ago, duration, label, printable, status, type Output } from './output.js';

/** What a task table shows; the API's Task, or a database row mapped to it (fix-stuck's direct path). */
export type TaskRow = Pick<
  TaskFieldsFragment,
  'id' | 'name' | 'status' | 'progress' | 'message' | 'workerId' | 'lastHeartbeatAt' | 'durationSeconds' | 'stuckReason' | 'stuckForSeconds'
>;

/** A row from the API, with its scheduling fields (the direct database path has none). */
type ScheduledRow = TaskRow & Partial<Pick<TaskFieldsFragment, 'priority' | 'runAt' | 'waitingFor'>>;

type Column = { head: string; cell: (task: ScheduledRow, out: Output) => string };

const columns = {
  id: { head: 'id', cell: (t) => printable(t.id) },
  name: { head: 'name', cell: (t) => label(t.name) },
  status: { head: 'status', cell: (t, out) => status(out.c, t.status) },
  progress: { head: 'progress', cell: (t) => `${Math.round(t.progress)}%` },
  running: { head: 'run time', cell: (t) => duration(t.durationSeconds) },
  heartbeat: { head: 'last heartbeat', cell: (t) => ago(t.lastHeartbeatAt) },
  stuck: { head: 'stuck', cell: (t, out) => (t.stuckReason ? out.c.red(t.stuckReason) : '') },
  reason: { head: 'reason', cell: (t, out) => out.c.red(t.stuckReason ?? '-') },
  stuckFor: { head: 'stuck for', cell: (t) => duration(t.stuckForSeconds) },
  worker: { head: 'worker', cell: (t) => (t.workerId == null ? '-' : printable(t.workerId)) },
  message: { head: 'message', cell: (t) => printable(t.message ?? '') },
  priority: { head: 'priority', cell: (t) => String(t.priority ?? 0) },
  runAt: { head: 'run at', cell: (t) => (t.runAt ? `${new Date(t.runAt).toISOString().replace('T', ' ').slice(0, 19)}Z` : '-') },
  waiting: { head: 'waiting for', cell: (t, out) => (t.waitingFor ? out.c.yellow(printable(t.waitingFor)) : '') },
} satisfies Record<string, Column>;

export type TaskColumn = keyof typeof columns;

/** The columns `list` shows. */
export const listColumns: TaskColumn[] = ['id', 'name', 'status', 'priority', 'runAt', 'progress', 'running', 'heartbeat', 'stuck', 'waiting'];
/** The columns of commands about stuck tasks (`stuck`, `cleanup`, `fix-stuck`). */
export const stuckColumns: TaskColumn[] = ['id', 'name', 'progress', 'reason', 'stuckFor', 'worker', 'message'];

export function taskTable(out: Output, tasks: readonly ScheduledRow[], which: readonly TaskColumn[]): string {
  const picked = which.map((key) => columns[key] as Column);
  return out.table(
    picked.map((column) => column.head),
    tasks.map((task) => picked.map((column) => column.cell(task, out))),
  );
}
