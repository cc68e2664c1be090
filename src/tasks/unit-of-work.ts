import type { RecordedAlert } from '../alerts/outbox.js';
import type { EventBus } from '../events.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { Db, Task } from './model.js';
import type { RecordedChange } from './sql/record-change.js';

/** What a unit of work writes through, and what it asks to be told once it committed. */
export interface UnitOfWork {
  /** The open transaction (or, with `transaction: false`, the client itself). */
  readonly db: Db;
  /** Publishes this change to live subscribers after the commit; returns the row as the write left it. */
  changed(change: RecordedChange): Task;
  /** Alerts this work recorded in the outbox: their delivery is woken after the commit. */
  alerted(recorded: readonly RecordedAlert[]): void;
  /** Anything else to announce after the commit, in order with the changes. */
  afterCommit(effect: () => void): void;
}

export interface CommitOptions {
  /**
   * false: the work is a single statement, which is its own transaction, so
   * it runs on the client and skips BEGIN/COMMIT (the hot path's round trips).
   * A work of more than one statement must not pass it.
   */
  transaction?: boolean;
  /** How long the transaction may take, and wait for a connection (Prisma's defaults: 5 s and 2 s). */
  timeout?: number;
  maxWait?: number;
}

/** Runs a unit of work: in a transaction, announcing its changes and alerts only once it committed. */
export type Commit = <T>(work: (uow: UnitOfWork) => Promise<T>, options?: CommitOptions) => Promise<T>;

/**
 * The one commit-then-publish path. Every write that subscribers or alert
 * receivers hear of goes through it, so nobody hears of a change that was
 * rolled back, and nothing committed goes unannounced.
 */
export function createCommit({
  prisma,
  bus,
  alerts,
  observe,
}: {
  prisma: PrismaClient;
  bus: EventBus;
  alerts: { committed(recorded: RecordedAlert[]): void };
  /** Hears every change this instance made (for metrics). */
  observe?: (change: RecordedChange) => void;
}): Commit {
  const publish = (change: RecordedChange) => {
    observe?.(change);
    if (change.event)
      bus.publish('task:updated', { event: change.event, task: change.event.type === 'DELETED' ? null : change.row, previous: change.previous });
  };

  return async (work, { transaction = true, timeout, maxWait } = {}) => {
    const effects: (() => void)[] = [];
    const recorded: RecordedAlert[] = [];
    const run = (db: Db) =>
      work({
        db,
        changed(change) {
          effects.push(() => publish(change));
          return change.row;
        },
        alerted: (alerts) => void recorded.push(...alerts),
        afterCommit: (effect) => void effects.push(effect),
      });
    const result = transaction ? await prisma.$transaction((tx) => run(tx), { ...(timeout && { timeout }), ...(maxWait && { maxWait }) }) : await run(prisma);
    alerts.committed(recorded);
    for (const effect of effects) effect();
    return result;
  };
}
