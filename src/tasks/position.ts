import { bigintId } from '../bigint-id.js';
import { badInput, TaskwardenError } from '../errors.js';

/**
 * Where a history entry stands in the one order every reader sees: its
 * writing transaction's id, then its own id. Readers only serve entries whose
 * transaction is older than every transaction still running, so no entry can
 * ever appear before one already served (see sql/event-log.ts).
 */
export interface EventPosition {
  xact: bigint;
  id: bigint;
}

/** Before every entry. */
export const origin: EventPosition = { xact: 0n, id: 0n };

export const isAfter = (a: EventPosition, b: EventPosition) => a.xact > b.xact || (a.xact === b.xact && a.id > b.id);
export const samePosition = (a: EventPosition, b: EventPosition) => a.xact === b.xact && a.id === b.id;

/** The cursor clients see (TaskEvent.id): opaque to them, and the same on PGlite and Postgres. */
export const cursorOf = (position: EventPosition & { transient?: number }) =>
  position.transient === undefined ? `${position.xact}.${position.id}` : `${position.xact}.${position.id}.${position.transient}`;

export function parseCursor(text: string, field = 'afterEventId'): EventPosition {
  // "xact.id"; a third part names a progress report the history did not keep, live after that entry: it resumes from the entry.
  const parts = text.split('.', 4);
  const [xact, id, ...transient] = parts.map(bigintId);
  if ((parts.length === 2 || parts.length === 3) && xact != null && id != null && transient.every((n) => n != null)) return { xact, id };
  // "After event 0" meant "from the beginning" in every version, so it still does.
  if (text === '0') return origin;
  if (bigintId(text) !== null) {
    // A plain event id, from a server before cursors followed the commit order: where it stood
    // in the order the client saw is unknown, so resuming from it could skip entries.
    throw new TaskwardenError(
      'STALE_CURSOR',
      `${field}: "${text}" is an event id from an older Taskwarden, not a cursor. Refetch what you show, then subscribe again without ${field} (or with the id of an event read since).`,
      { field },
    );
  }
  throw badInput(field, `"${text.slice(0, 40)}" is not an event cursor (the id of a TaskEvent)`);
}

export const positionOf = (event: { xact: bigint; id: bigint }): EventPosition => ({ xact: event.xact, id: event.id });
