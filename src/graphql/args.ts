import { badInput } from '../errors.js';
import { parseCursor, type EventPosition } from '../tasks/position.js';

// How resolvers read their arguments: each rule once, so every field that takes
// an id, a cursor or a page size takes it the same way.

/** An `ID` argument as the services take it (GraphQL may hand an ID over as a number). */
export const idArg = (id: string | number): string => String(id);

/** An optional `ID` argument: null when not given. */
export const optionalIdArg = (id: string | number | null | undefined): string | null => (id == null ? null : String(id));

/** An `afterEventId` argument: null when not given, otherwise a position in the history (BAD_USER_INPUT or STALE_CURSOR when it is none). */
export const cursorArg = (id: string | number | null | undefined): EventPosition | null => (id == null ? null : parseCursor(String(id)));

/** The options of a `first: Int!` argument with a default; check the value with `pageSize`. */
export const firstArg = (defaultValue: number, description?: string) => ({ defaultValue, required: true as const, ...(description ? { description } : {}) });

/** A `first` argument within 1..max, or BAD_USER_INPUT. */
export function pageSize(first: number, max: number): number {
  if (first < 1 || first > max) throw badInput('first', `must be from 1 to ${max}`);
  return first;
}
