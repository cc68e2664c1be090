import { stuckActionOutcome } from 'taskwarden/client';
import type { Board, StuckAlert, Toast } from '../board.js';
import { taskHref } from '../hooks.js';
import * as format from '../format.js';

export function AlertList({ alerts, board }: { alerts: StuckAlert[]; board: Board }) {
  return (
    <section class={`panel alerts${alerts.length ? ' has-items' : ''}`} aria-label="Stuck task alerts" data-testid="alerts">
      <header class="panel-head">
        <h2>Alerts {alerts.length > 0 && <span class="count">{alerts.length}</span>}</h2>
        {alerts.length > 0 && (
          <button type="button" class="link" onClick={() => board.clearAlerts()}>
            Clear
          </button>
        )}
      </header>
      {alerts.length === 0 ? (
        <p class="empty">No stuck task caught since this page opened.</p>
      ) : (
        <ol class="alert-list">
          {alerts.map((alert) => (
            <li key={alert.key} data-testid="alert-item" data-task-id={alert.task.id}>
              <a href={taskHref(alert.task.id)}>{alert.task.name}</a>
              <span class="alert-why">
                <span class="stuck">{alert.reason}</span> for {format.duration(alert.stuckForSeconds)}; {stuckActionOutcome(alert.actionTaken)} by {alert.actor}
              </span>
              <time dateTime={alert.detectedAt}>{format.time(alert.detectedAt)}</time>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

export function Toasts({ toasts, board }: { toasts: Toast[]; board: Board }) {
  return (
    <div class="toasts" aria-live="polite">
      {toasts.map((toast) => (
        <div key={toast.id} class={`toast ${toast.tone}`} data-testid="toast" role={toast.tone === 'ok' ? 'status' : 'alert'}>
          <span>{toast.text}</span>
          {toast.taskId && (
            <a href={taskHref(toast.taskId)} onClick={() => board.dismissToast(toast.id)}>
              Open task
            </a>
          )}
          <button type="button" class="close" aria-label="Dismiss" onClick={() => board.dismissToast(toast.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
