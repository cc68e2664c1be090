import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { isTerminal, type CleanupStuckMutation, type StuckAction } from 'taskwarden/client';
import { messageOf, type Board, type BoardTask } from '../board.js';
import * as format from '../format.js';
import { StatusBadge } from './bits.js';

/** What the user asked to do, waiting for confirmation. */
export type Action = { kind: 'stop' | 'force'; task: BoardTask } | { kind: 'delete'; tasks: BoardTask[] } | { kind: 'cleanup' };

export function ActionDialog({ action, board, onClose }: { action: Action; board: Board; onClose: () => void }) {
  switch (action.kind) {
    case 'stop':
      return <StopDialog task={action.task} board={board} onClose={onClose} />;
    case 'force':
      return <ForceDialog task={action.task} board={board} onClose={onClose} />;
    case 'delete':
      return <DeleteDialog tasks={action.tasks} board={board} onClose={onClose} />;
    case 'cleanup':
      return <CleanupDialog board={board} onClose={onClose} />;
  }
}

function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    if (!ref.current?.open) ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} class="modal" data-testid="dialog" onClose={onClose} aria-labelledby="dialog-title">
      <h2 id="dialog-title">{title}</h2>
      {children}
    </dialog>
  );
}

/** Runs a request, keeping the server's words when it fails. */
function useRequest() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  async function run(request: () => Promise<void>) {
    setBusy(true);
    setError(undefined);
    try {
      await request();
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, run };
}

function Buttons({
  busy,
  confirm,
  tone = 'danger',
  onConfirm,
  onClose,
  disabled = false,
}: {
  busy: boolean;
  confirm: string;
  tone?: 'danger' | 'primary';
  onConfirm: () => void;
  onClose: () => void;
  disabled?: boolean;
}) {
  return (
    <div class="modal-buttons">
      <button type="button" onClick={onClose}>
        Cancel
      </button>
      <button type="button" class={tone} data-testid="confirm" disabled={busy || disabled} onClick={onConfirm}>
        {busy ? 'Working…' : confirm}
      </button>
    </div>
  );
}

const CloseButton = ({ onClose }: { onClose: () => void }) => (
  <div class="modal-buttons">
    <button type="button" onClick={onClose}>
      Close
    </button>
  </div>
);

const ErrorLine = ({ error }: { error?: string }) =>
  error ? (
    <p class="error-line" role="alert" data-testid="dialog-error">
      {error}
    </p>
  ) : null;

function ReasonField({ value, onInput }: { value: string; onInput: (value: string) => void }) {
  return (
    <label class="field">
      Reason (optional, kept in its history)
      <input type="text" maxLength={1000} value={value} onInput={(e) => onInput(e.currentTarget.value)} data-testid="reason" />
    </label>
  );
}

function StopDialog({ task, board, onClose }: { task: BoardTask; board: Board; onClose: () => void }) {
  const [reason, setReason] = useState('');
  const { busy, error, run } = useRequest();
  const confirm = () =>
    run(async () => {
      board.showTask(await board.client.stopTask(task.id, reason || undefined));
      board.toast('ok', `Stopped ${task.name}`);
      onClose();
    });
  return (
    <Modal title={`Stop ${task.name}?`} onClose={onClose}>
      <p>It becomes CANCELLED{task.status === 'RUNNING' ? ' and its worker loses its lease: anything the worker writes later is refused' : ''}.</p>
      <ReasonField value={reason} onInput={setReason} />
      <ErrorLine error={error} />
      <Buttons busy={busy} confirm="Stop task" onConfirm={confirm} onClose={onClose} />
    </Modal>
  );
}

function ForceDialog({ task, board, onClose }: { task: BoardTask; board: Board; onClose: () => void }) {
  const [status, setStatus] = useState<'CANCELLED' | 'FAILED'>('CANCELLED');
  const [reason, setReason] = useState('');
  const { busy, error, run } = useRequest();
  const confirm = () =>
    run(async () => {
      board.showTask(await board.client.forceComplete(task.id, { status, reason: reason || undefined }));
      board.toast('ok', `Force-completed ${task.name} as ${status}`);
      onClose();
    });
  return (
    <Modal title={`Force-complete ${task.name}?`} onClose={onClose}>
      <p>Ends the run whatever its worker is doing; the worker's later writes are refused.</p>
      <fieldset class="choice">
        <legend>Mark it</legend>
        {(['CANCELLED', 'FAILED'] as const).map((value) => (
          <label key={value}>
            <input type="radio" name="force-status" value={value} checked={status === value} onChange={() => setStatus(value)} /> {value}
          </label>
        ))}
      </fieldset>
      <ReasonField value={reason} onInput={setReason} />
      <ErrorLine error={error} />
      <Buttons busy={busy} confirm={`Mark ${status}`} onConfirm={confirm} onClose={onClose} />
    </Modal>
  );
}

interface Outcome {
  task: BoardTask;
  error?: string;
}

function DeleteDialog({ tasks, board, onClose }: { tasks: BoardTask[]; board: Board; onClose: () => void }) {
  const [outcomes, setOutcomes] = useState<Outcome[]>();
  const { busy, run } = useRequest();
  const unfinished = tasks.filter((task) => !isTerminal(task.status));
  const title = tasks.length === 1 ? `Delete ${tasks[0]!.name}?` : `Delete ${tasks.length} tasks?`;
  const confirm = () =>
    run(async () => {
      const done: Outcome[] = [];
      for (const task of tasks) {
        try {
          await board.client.deleteTask(task.id);
          board.showDeleted(task.id);
          done.push({ task });
        } catch (failure) {
          done.push({ task, error: messageOf(failure) });
        }
      }
      const deleted = done.filter((outcome) => !outcome.error).length;
      if (deleted) board.toast('ok', `Deleted ${deleted} task${deleted === 1 ? '' : 's'}`);
      if (deleted === done.length) onClose();
      else setOutcomes(done);
    });
  return (
    <Modal title={title} onClose={onClose}>
      {outcomes ? (
        <ul class="outcomes" data-testid="delete-outcomes">
          {outcomes.map(({ task, error }) => (
            <li key={task.id} class={error ? 'refused' : 'deleted'}>
              <strong>{task.name}</strong>: {error ? <span data-testid="dialog-error">{error}</span> : 'deleted'}
            </li>
          ))}
        </ul>
      ) : (
        <>
          <p>The tasks go away; their history is kept.</p>
          {unfinished.length > 0 && (
            <p class="warning" data-testid="delete-warning">
              {unfinished.length === tasks.length && tasks.length === 1 ? 'It is' : `${unfinished.length} of them are`} not finished (
              {[...new Set(unfinished.map((task) => task.status))].join(', ')}). Only finished tasks can be deleted, so the server will refuse{' '}
              {unfinished.length === 1 ? 'it' : 'those'}: stop or force-complete them first.
            </p>
          )}
        </>
      )}
      {outcomes ? <CloseButton onClose={onClose} /> : <Buttons busy={busy} confirm="Delete" onConfirm={confirm} onClose={onClose} />}
    </Modal>
  );
}

type CleanupReport = CleanupStuckMutation['cleanupStuck'];
const STUCK_ACTIONS: StuckAction[] = ['CANCEL', 'FAIL', 'RETRY', 'NONE'];

// Left empty, the server judges each task as the monitor does (its own clocks and the configured ones);
// a number is the seed's one timeout for everything.
function CleanupDialog({ board, onClose }: { board: Board; onClose: () => void }) {
  const [timeoutMinutes, setTimeoutMinutes] = useState<number | undefined>(undefined);
  const [action, setAction] = useState<StuckAction>('CANCEL');
  const [preview, setPreview] = useState<CleanupReport>();
  const [applied, setApplied] = useState<CleanupReport>();
  const { busy, error, run } = useRequest();
  const check = (autoFix: boolean) =>
    run(async () => {
      const report = await board.client.cleanupStuck({ timeoutMinutes, autoFix, action });
      if (!autoFix) return setPreview(report);
      setApplied(report);
      board.toast('ok', `Cleanup: ${report.fixed.length} of ${report.found.length} stuck tasks handled (${report.action})`);
      void board.refresh();
    });
  const report = applied ?? preview;
  return (
    <Modal title="Clean up stuck tasks" onClose={onClose}>
      <div class="row-fields">
        <label class="field">
          Stuck after (minutes)
          <input
            type="number"
            min={0.1}
            step="any"
            value={timeoutMinutes ?? ''}
            placeholder="the monitor's clocks"
            data-testid="cleanup-timeout"
            onInput={(e) => {
              const value = e.currentTarget.value.trim();
              setTimeoutMinutes(value === '' ? undefined : Number(value));
              setPreview(undefined);
            }}
          />
        </label>
        <label class="field">
          Action
          <select
            value={action}
            onChange={(e) => {
              setAction(e.currentTarget.value as StuckAction);
              setPreview(undefined);
            }}
          >
            {STUCK_ACTIONS.map((value) => (
              <option key={value}>{value}</option>
            ))}
          </select>
        </label>
      </div>
      {report && (
        <div data-testid="cleanup-report">
          <p>
            {applied
              ? `Handled ${applied.fixed.length} of ${applied.found.length} stuck tasks (${applied.action}).`
              : report.found.length
                ? `${report.found.length} stuck task${report.found.length === 1 ? '' : 's'} would be handled (${report.action}):`
                : timeoutMinutes == null
                  ? "Nothing is stuck under the monitor's clocks."
                  : 'Nothing is stuck under this timeout.'}
          </p>
          <ul class="outcomes">
            {(applied ? applied.fixed : report.found).map((task) => (
              <li key={task.id}>
                <strong>{task.name}</strong> <StatusBadge status={task.status} />{' '}
                {!applied && `${task.stuckReason} for ${format.duration(task.stuckForSeconds)}`}
              </li>
            ))}
          </ul>
        </div>
      )}
      <ErrorLine error={error} />
      {applied ? (
        <CloseButton onClose={onClose} />
      ) : preview ? (
        <Buttons
          busy={busy}
          confirm={`${action} ${preview.found.length} task${preview.found.length === 1 ? '' : 's'}`}
          disabled={!preview.found.length}
          onConfirm={() => check(true)}
          onClose={onClose}
        />
      ) : (
        <Buttons busy={busy} tone="primary" confirm="Preview" onConfirm={() => check(false)} onClose={onClose} />
      )}
    </Modal>
  );
}
