import { useEffect, useRef, useState } from 'preact/hooks';
import type { GetTaskQuery, TaskEventFieldsFragment } from 'taskwarden/client';
import { messageOf, type Board, type BoardTask } from '../board.js';
import { taskHref } from '../hooks.js';
import * as format from '../format.js';
import { ProgressBar, StatusBadge, StuckMarker } from './bits.js';
import type { Action } from './dialogs.js';
import { TaskActions } from './TaskTable.js';

type FullTask = NonNullable<GetTaskQuery['task']> & { seenAt: number };

/** One task: params, result or error, and its history as a timeline; kept live by the board's events. */
export function TaskDetail({ id, board, now, act, onClose }: { id: string; board: Board; now: number; act: (action: Action) => void; onClose: () => void }) {
  const [task, setTask] = useState<FullTask | null>();
  const [events, setEvents] = useState<TaskEventFieldsFragment[]>([]);
  const [error, setError] = useState<string>();
  const [deleted, setDeleted] = useState(false);
  const panel = useRef<HTMLElement>(null);

  useEffect(() => {
    let current = true;
    let reload: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const found = await board.client.getTask(id);
        if (!current) return;
        setTask(found && { ...found, seenAt: Date.now() });
        if (found) setEvents(found.events);
      } catch (failure) {
        if (current) setError(messageOf(failure));
      }
    };
    setTask(undefined);
    setDeleted(false);
    void load();
    const stop = board.onTaskEvent((event) => {
      if (event.taskId !== id) return;
      setEvents((old) => (old.some((e) => e.id === event.id) ? old : [...old, event]));
      if (!event.task) return setDeleted(true);
      const snapshot = event.task;
      setTask((old) => old && { ...old, ...snapshot, seenAt: Date.now() });
      // Result and error come with the full task: read it again once a transition settles.
      if (event.type !== 'PROGRESS') {
        clearTimeout(reload);
        reload = setTimeout(load, 300);
      }
    });
    panel.current?.focus();
    return () => {
      current = false;
      clearTimeout(reload);
      stop();
    };
  }, [id, board]);

  return (
    <div class="drawer-backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <aside class="drawer" ref={panel} tabIndex={-1} aria-label="Task" data-testid="task-detail" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
        <button type="button" class="close" aria-label="Close" onClick={onClose}>
          ×
        </button>
        {error && <p class="error-line">{error}</p>}
        {task === undefined && !error && <p class="empty">Loading…</p>}
        {task === null && <p class="empty">No task {id}: it was deleted, or never existed.</p>}
        {task && <Body task={task} events={events} deleted={deleted} now={now} act={act} />}
      </aside>
    </div>
  );
}

function Body({
  task,
  events,
  deleted,
  now,
  act,
}: {
  task: FullTask;
  events: TaskEventFieldsFragment[];
  deleted: boolean;
  now: number;
  act: (action: Action) => void;
}) {
  const facts: [string, string][] = [
    ['Kind', task.kind],
    ['Attempt', `${task.attempt} of ${task.maxAttempts}`],
    ['Worker', task.workerId ?? '—'],
    ['Created', format.time(task.createdAt)],
    ['Started', format.time(task.startedAt)],
    ['Finished', format.time(task.completedAt)],
    ['Duration', format.duration(task.durationSeconds)],
    ['Last heartbeat', format.time(task.lastHeartbeatAt)],
    ['Last progress', format.time(task.lastProgressAt)],
    ['Time limit', task.timeoutMinutes == null ? '—' : format.duration(task.timeoutMinutes * 60)],
    ['Priority', String(task.priority)],
    ['Run at', task.runAt ? format.time(task.runAt) : '—'],
    ...(task.waitingFor ? ([['Waiting for', task.waitingFor]] as [string, string][]) : []),
  ];
  return (
    <>
      <h2 class="detail-title">{task.name}</h2>
      <p class="detail-status">
        <StatusBadge status={task.status} /> <StuckMarker task={task as BoardTask} now={now} />
        {deleted && <span class="badge">DELETED</span>}
        <code class="id">{task.id}</code>
      </p>
      {!deleted && <TaskActions task={task} act={act} />}
      <div class="detail-progress">
        <ProgressBar value={task.progress} stuck={task.isStuck} status={task.status} />
        <span>
          {format.progress(task.progress)}
          {task.message ? ` · ${task.message}` : ''}
        </span>
      </div>
      <dl class="facts">
        {facts.map(([label, value]) => (
          <div key={label}>
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      {(task.dependsOn.length > 0 || task.dependants.length > 0) && (
        <div class="dependencies">
          <TaskLinks title="Depends on" tasks={task.dependsOn} testid="depends-on" />
          <TaskLinks title="Dependants" tasks={task.dependants} testid="dependants" />
        </div>
      )}
      <h3>Params</h3>
      <pre data-testid="params">{format.json(task.params)}</pre>
      {task.error != null && (
        <>
          <h3>Error</h3>
          <pre class="error-block" data-testid="error">
            {task.error}
          </pre>
        </>
      )}
      {task.result != null && (
        <>
          <h3>Result</h3>
          <pre data-testid="result">{format.json(task.result)}</pre>
        </>
      )}
      <h3>History</h3>
      <ol class="timeline" data-testid="timeline">
        {events.map((event) => (
          <li key={event.id} class={`event-${event.type.toLowerCase()}`}>
            <time dateTime={event.at}>{format.time(event.at)}</time>
            <span class="event-type">{event.type}</span>
            <span class="event-what">
              {event.fromStatus && event.toStatus && event.fromStatus !== event.toStatus ? `${event.fromStatus} → ${event.toStatus} ` : ''}
              by <strong>{event.actor}</strong>
              {event.reason ? `: ${event.reason}` : ''}
              {event.type === 'PROGRESS' && event.progress != null ? ` ${format.progress(event.progress)}` : ''}
              {event.message ? ` · ${event.message}` : ''}
            </span>
          </li>
        ))}
      </ol>
    </>
  );
}

/** The tasks this one waits for, or that wait for it, each a link to its own detail. */
function TaskLinks({ title, tasks, testid }: { title: string; tasks: FullTask['dependsOn']; testid: string }) {
  if (tasks.length === 0) return null;
  return (
    <>
      <h3>{title}</h3>
      <ul class="task-links" data-testid={testid}>
        {tasks.map((t) => (
          <li key={t.id}>
            <a href={taskHref(t.id)} data-testid="dependency-link">
              {t.name}
            </a>{' '}
            <StatusBadge status={t.status} />
          </li>
        ))}
      </ul>
    </>
  );
}
