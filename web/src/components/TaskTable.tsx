import { useEffect, useState } from 'preact/hooks';
import { isTerminal, taskStatuses } from 'taskwarden/client';
import { PAGE_SIZE, type Board, type BoardState, type BoardTask, type StuckAlert } from '../board.js';
import { taskHref } from '../hooks.js';
import * as format from '../format.js';
import { ProgressBar, StatusBadge, StuckMarker } from './bits.js';
import type { Action } from './dialogs.js';

const SEARCH_DEBOUNCE_MS = 250;

interface Props {
  state: BoardState;
  board: Board;
  now: number;
  act: (action: Action) => void;
}

export function TaskTable({ state, board, now, act }: Props) {
  const { page, filter } = state;
  const [search, setSearch] = useState(filter.search);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());

  useEffect(() => {
    if (search === filter.search) return;
    const timer = setTimeout(() => board.setFilter({ search }), SEARCH_DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [search]);

  // Selection follows the page: tasks that left it (deleted, another page) are no longer selected.
  const selectedRows = page.rows.filter((row) => selected.has(row.id));
  const toggle = (id: string) => setSelected((old) => (old.has(id) ? new Set([...old].filter((x) => x !== id)) : new Set([...old, id])));
  const allSelected = page.rows.length > 0 && selectedRows.length === page.rows.length;
  const kinds = state.overview?.stats.byKind.map((k) => k.kind) ?? [];
  const first = (page.number - 1) * PAGE_SIZE + 1;
  // Tasks caught stuck while this page was open keep a mark after the monitor dealt with them.
  const caught = new Map(state.alerts.map((alert) => [alert.task.id, alert] as const));

  return (
    <section class="panel tasks" aria-label="Tasks">
      <header class="panel-head">
        <h2>Tasks</h2>
        <button type="button" data-testid="cleanup" onClick={() => act({ kind: 'cleanup' })}>
          Clean up stuck…
        </button>
      </header>
      <div class="filters">
        <input
          type="search"
          placeholder="Search by name"
          aria-label="Search by name"
          maxLength={200}
          value={search}
          onInput={(e) => setSearch(e.currentTarget.value)}
          data-testid="search"
        />
        <div class="chips" role="group" aria-label="Status">
          {taskStatuses.map((status) => {
            const on = filter.status.includes(status);
            return (
              <button
                key={status}
                type="button"
                class={`chip${on ? ' on' : ''}`}
                aria-pressed={on}
                data-testid={`filter-${status}`}
                onClick={() => board.setFilter({ status: on ? filter.status.filter((s) => s !== status) : [...filter.status, status] })}
              >
                {status.toLowerCase()}
              </button>
            );
          })}
        </div>
        <select aria-label="Kind" value={filter.kind} onChange={(e) => board.setFilter({ kind: e.currentTarget.value })} data-testid="filter-kind">
          <option value="">all kinds</option>
          {[...new Set([...kinds, filter.kind].filter(Boolean))].map((kind) => (
            <option key={kind}>{kind}</option>
          ))}
        </select>
      </div>

      {selectedRows.length > 0 && (
        <div class="bulk" data-testid="bulk">
          <span>{selectedRows.length} selected</span>
          <button type="button" class="danger" data-testid="bulk-delete" onClick={() => act({ kind: 'delete', tasks: selectedRows })}>
            Delete…
          </button>
          <button type="button" class="link" onClick={() => setSelected(new Set())}>
            Clear selection
          </button>
        </div>
      )}

      {page.error && (
        <p class="error-line" role="alert">
          {page.error}
        </p>
      )}

      <table class={`task-table${page.loading ? ' loading' : ''}`}>
        <thead>
          <tr>
            <th class="col-check">
              <input
                type="checkbox"
                aria-label="Select all on this page"
                checked={allSelected}
                onChange={() => setSelected(allSelected ? new Set() : new Set(page.rows.map((row) => row.id)))}
              />
            </th>
            <th>Name</th>
            <th>Status</th>
            <th class="col-progress">Progress</th>
            <th>Worker</th>
            <th>Time</th>
            <th class="col-actions">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {page.rows.map((task) => (
            <Row key={task.id} task={task} caught={caught.get(task.id)} now={now} selected={selected.has(task.id)} onToggle={() => toggle(task.id)} act={act} />
          ))}
        </tbody>
      </table>
      {!page.loading && page.rows.length === 0 && (
        <p class="empty">{filter.status.length || filter.kind || filter.search ? 'No task matches.' : 'No tasks yet.'}</p>
      )}

      <footer class="pager">
        <span data-testid="page-info">
          {page.totalCount ? `${first}–${first + page.rows.length - 1} of ${totalText(page.totalCount, Boolean(filter.search.trim()))}` : '0 tasks'}
        </span>
        <button type="button" disabled={page.number <= 1 || page.loading} onClick={() => board.previousPage()} data-testid="page-previous">
          ← Newer
        </button>
        <button type="button" disabled={!page.hasNext || page.loading} onClick={() => board.nextPage()} data-testid="page-next">
          Older →
        </button>
      </footer>
    </section>
  );
}

interface RowProps {
  task: BoardTask;
  caught?: StuckAlert;
  now: number;
  selected: boolean;
  onToggle: () => void;
  act: (action: Action) => void;
}

function Row({ task, caught, now, selected, onToggle, act }: RowProps) {
  const running = task.status === 'RUNNING';
  const runFor = task.durationSeconds == null ? undefined : running ? format.grown(task.durationSeconds, task.seenAt, now) : task.durationSeconds;
  return (
    <tr data-testid="task-row" data-task-id={task.id} data-status={task.status} class={task.isStuck ? 'stuck-row' : undefined}>
      <td class="col-check">
        <input type="checkbox" aria-label={`Select ${task.name}`} checked={selected} onChange={onToggle} data-testid="select" />
      </td>
      <td class="col-name">
        <a href={taskHref(task.id)} data-testid="task-link">
          {task.name}
        </a>
        <span class="kind">{task.kind}</span>
      </td>
      <td class="col-status">
        <StatusBadge status={task.status} />
        <StuckMarker task={task} now={now} />
        {caught && !task.isStuck && (
          <span class="stuck caught" data-testid="caught-marker" title={`Caught stuck at ${format.time(caught.detectedAt)}`}>
            Was stuck · {caught.reason}
          </span>
        )}
      </td>
      <td class="col-progress">
        <ProgressBar value={task.progress} stuck={task.isStuck} status={task.status} />
        <span class="pct" data-testid="progress-text">
          {format.progress(task.progress)}
        </span>
        {task.message && <span class="message">{task.message}</span>}
      </td>
      <td class="col-worker">{task.workerId ?? '—'}</td>
      <td class="col-time">
        {runFor !== undefined ? (
          <span title={`started ${format.time(task.startedAt)}`}>{format.duration(runFor)}</span>
        ) : task.status === 'PENDING' ? (
          <>
            <span title={`created ${format.time(task.createdAt)}`}>since {format.time(task.createdAt, { seconds: false })}</span>
            <Scheduling task={task} />
          </>
        ) : (
          <span title={`ended ${format.time(task.completedAt)}`}>ended {format.time(task.completedAt, { seconds: false })}</span>
        )}
      </td>
      <td class="col-actions">
        <TaskActions task={task} act={act} compact />
      </td>
    </tr>
  );
}

/** The actions a task's status allows: stop while it is pending or running, force-complete while running, delete once finished. */
export function TaskActions({ task, act, compact = false }: { task: BoardTask; act: (action: Action) => void; compact?: boolean }) {
  return (
    <div class={`actions${compact ? ' compact' : ''}`}>
      {(task.status === 'PENDING' || task.status === 'RUNNING') && (
        <button type="button" data-testid="action-stop" onClick={() => act({ kind: 'stop', task })}>
          Stop
        </button>
      )}
      {task.status === 'RUNNING' && (
        <button type="button" data-testid="action-force" onClick={() => act({ kind: 'force', task })}>
          Force…
        </button>
      )}
      {isTerminal(task.status) && (
        <button type="button" class="danger-text" data-testid="action-delete" onClick={() => act({ kind: 'delete', tasks: [task] })}>
          Delete
        </button>
      )}
    </div>
  );
}

/** With a search the server counts matches up to 1,000 and stops (docs/api.md): 1,000 then means "at least". */
const SEARCH_COUNT_CAP = 1000;
function totalText(total: number, searching: boolean): string {
  return searching && total >= SEARCH_COUNT_CAP ? `${SEARCH_COUNT_CAP.toLocaleString('en-US')}+` : String(total);
}

/** A pending task's place in line: its priority, when it may run, and what holds it back now. */
function Scheduling({ task }: { task: BoardTask }) {
  return (
    <span class="scheduling">
      {task.priority !== 0 && (
        <span class="priority" data-testid="priority" title="Higher is claimed first">
          priority {task.priority}
        </span>
      )}
      {task.runAt && (
        <span class="run-at" data-testid="run-at" title={task.runAt}>
          runs at {format.time(task.runAt, { seconds: false })}
        </span>
      )}
      {task.waitingFor && (
        <span class="waiting" data-testid="waiting-for">
          waiting for {task.waitingFor}
        </span>
      )}
    </span>
  );
}
