import { useState } from 'preact/hooks';
import type { KindQueueFieldsFragment } from 'taskwarden/client';
import { messageOf, type Board, type Overview } from '../board.js';
import * as format from '../format.js';

/**
 * Each kind's queue: ready, delayed, blocked, running against its limit; an
 * operator pauses, resumes and limits kinds here. Others see the figures only.
 */
export function Queues({ overview, board }: { overview?: Overview; board: Board }) {
  const [error, setError] = useState<string>();
  const queues = overview?.queues ?? [];
  const change = async (run: () => Promise<KindQueueFieldsFragment>) => {
    setError(undefined);
    try {
      board.showQueue(await run());
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  return (
    <section class="panel queues" aria-label="Queues" data-testid="queues">
      <header class="panel-head">
        <h2>Queues</h2>
      </header>
      {error && (
        <p class="error-line" role="alert" data-testid="queue-error">
          {error}
        </p>
      )}
      {overview && queues.length === 0 && <p class="empty">Nothing waits or runs, and no kind has a limit or a pause.</p>}
      {queues.length > 0 && (
        // Seven columns do not fit a phone: the table scrolls inside its panel, the page does not.
        <div class="queue-scroll">
          <table class="queue-table">
            <thead>
              <tr>
                <th>Kind</th>
                <th title="due, dependencies done">Ready</th>
                <th title="runAt still ahead">Delayed</th>
                <th title="waiting for a dependency">Blocked</th>
                <th>Running</th>
                <th>Limit</th>
                <th title="how long the oldest ready task has waited">Oldest</th>
                {overview?.canOperate && (
                  <th>
                    <span class="sr-only">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {queues.map((q) => (
                <QueueRow key={q.kind} queue={q} canOperate={overview?.canOperate ?? false} board={board} change={change} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function QueueRow({
  queue: q,
  canOperate,
  board,
  change,
}: {
  queue: KindQueueFieldsFragment;
  canOperate: boolean;
  board: Board;
  change: (run: () => Promise<KindQueueFieldsFragment>) => Promise<void>;
}) {
  const [limit, setLimit] = useState(q.limit == null ? '' : String(q.limit));
  const full = q.limit != null && q.running >= q.limit;
  const submitLimit = (event: Event) => {
    event.preventDefault();
    const text = limit.trim();
    void change(() => board.client.setKindLimit(q.kind, text === '' ? null : Number(text)));
  };
  return (
    <tr data-testid="queue-row" data-kind={q.kind} data-paused={String(q.paused)}>
      <td class="col-name">
        {q.kind}
        {q.paused && (
          <span class="badge paused" data-testid="paused-badge">
            paused
          </span>
        )}
      </td>
      <td data-testid="queue-ready">{q.pending}</td>
      <td>{q.delayed}</td>
      <td>{q.blocked}</td>
      <td class={full ? 'full' : undefined} data-testid="queue-running">
        {q.running}
      </td>
      <td data-testid="queue-limit">
        {canOperate ? (
          <form class="limit-form" onSubmit={submitLimit}>
            <input
              type="number"
              min={0}
              inputMode="numeric"
              placeholder="none"
              aria-label={`Limit of ${q.kind}`}
              value={limit}
              onInput={(e) => setLimit(e.currentTarget.value)}
              data-testid="limit-input"
            />
            <button type="submit" data-testid="limit-save">
              Set
            </button>
          </form>
        ) : (
          (q.limit ?? '—')
        )}
      </td>
      <td>{q.pending ? format.duration(q.oldestReadyAgeSeconds) : '—'}</td>
      {canOperate && (
        <td class="col-actions">
          {q.paused ? (
            <button type="button" data-testid="resume" onClick={() => void change(() => board.client.resumeKind(q.kind))}>
              Resume
            </button>
          ) : (
            <button type="button" data-testid="pause" onClick={() => void change(() => board.client.pauseKind(q.kind))}>
              Pause
            </button>
          )}
        </td>
      )}
    </tr>
  );
}
