import type { Sink, TaskwardenClientError } from './results.js';

/** The filter of a followed `taskUpdated` stream; `afterEventId` starts it after that entry (replaying what came since). */
export interface FollowFilter {
  id?: string;
  kinds?: string[];
  afterEventId?: string;
}

export interface FollowHandlers<E> {
  /** Each history entry, once, in the history's order. */
  next(event: E): void;
  /** An error the stream cannot resume from (a refused token, an unknown task, a bad cursor): following stops. */
  error?(error: TaskwardenClientError): void;
}

interface Subscribable<E> {
  /** Opens one `taskUpdated` subscription; returns its unsubscribe. */
  taskUpdated(filter: FollowFilter, sink: Sink<E>): () => void;
  onConnection(listener: (state: 'connected' | 'closed') => void): () => void;
}

/** How long to wait before reopening a stream the server ended (it was shutting down, say). */
const REOPEN_MS = 1000;

/**
 * `taskUpdated`, resumed without gaps or duplicates: it remembers the id of the
 * last entry received and subscribes again after it when the connection comes
 * back, when the server ended the stream because this client fell behind
 * (SUBSCRIPTION_OVERFLOW), or when the server ended it. Returns the function that stops it.
 */
export function followTaskUpdates<E extends { id: string }>(client: Subscribable<E>, filter: FollowFilter, handlers: FollowHandlers<E>): () => void {
  let last = filter.afterEventId;
  let stopped = false;
  // Each subscription has a generation; what an older one still delivers is dropped, so nothing arrives twice.
  let generation = 0;
  let unsubscribe = () => {};
  let reopenTimer: ReturnType<typeof setTimeout> | undefined;

  const open = () => {
    clearTimeout(reopenTimer);
    unsubscribe();
    if (stopped) return;
    const mine = ++generation;
    const current = () => mine === generation && !stopped;
    unsubscribe = client.taskUpdated(
      { id: filter.id, kinds: filter.kinds, afterEventId: last },
      {
        next: (event) => {
          if (!current()) return;
          last = event.id;
          handlers.next(event);
        },
        error: (error) => {
          if (!current()) return;
          if (error.code === 'SUBSCRIPTION_OVERFLOW') return open();
          // The connection gave up or closed for good: try again shortly, from the last entry.
          if (error.code === 'NETWORK_ERROR') return reopenLater();
          stop();
          handlers.error?.(error);
        },
        complete: () => {
          if (current()) reopenLater();
        },
      },
    );
  };
  const reopenLater = () => {
    clearTimeout(reopenTimer);
    reopenTimer = setTimeout(open, REOPEN_MS);
  };

  // graphql-ws subscribes again by itself after a reconnect, but with the arguments of the first
  // subscription: what happened while away would be lost. This one resumes after the last entry.
  let dropped = false;
  const stopListening = client.onConnection((state) => {
    if (state === 'closed') dropped = true;
    else if (dropped) {
      dropped = false;
      open();
    }
  });

  const stop = () => {
    stopped = true;
    clearTimeout(reopenTimer);
    stopListening();
    unsubscribe();
  };
  open();
  return stop;
}
