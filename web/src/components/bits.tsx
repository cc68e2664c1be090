import type { TaskStatus } from 'taskwarden/client';
import type { BoardTask } from '../board.js';
import * as format from '../format.js';

export function StatusBadge({ status }: { status: TaskStatus }) {
  return (
    <span class={`badge status-${status.toLowerCase()}`} data-testid="status">
      {status}
    </span>
  );
}

export function ProgressBar({ value, stuck = false, status }: { value: number; stuck?: boolean; status?: TaskStatus }) {
  const clamped = Math.min(100, Math.max(0, value));
  return (
    <div
      class={`progress${stuck ? ' is-stuck' : ''}${status ? ` status-${status.toLowerCase()}` : ''}`}
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={clamped}
      data-testid="progress"
    >
      <div class="progress-fill" style={{ width: `${clamped}%` }} />
    </div>
  );
}

/** "Stuck · NO_HEARTBEAT · 2 min 5 s", growing each second. */
export function StuckMarker({ task, now }: { task: BoardTask; now: number }) {
  if (!task.isStuck || !task.stuckReason) return null;
  const seconds = task.stuckForSeconds == null ? undefined : format.grown(task.stuckForSeconds, task.seenAt, now);
  return (
    <span class="stuck" data-testid="stuck-marker" title={`Stuck since ${format.time(task.stuckSince)}`}>
      Stuck · {task.stuckReason}
      {seconds !== undefined && ` · ${format.duration(seconds)}`}
    </span>
  );
}
