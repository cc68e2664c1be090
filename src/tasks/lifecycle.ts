// The lifecycle's plain facts and words, with no import at all: the SDK's public entry (src/client/index.ts)
// re-exports them, so the CLI and the dashboard read the same values as the domain.

/** Every status, in lifecycle order: PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED. */
export const taskStatuses = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;

/** The statuses a task never leaves (and the only ones it can be deleted in). */
export const terminalStatuses: readonly (typeof taskStatuses)[number][] = ['COMPLETED', 'FAILED', 'CANCELLED'];

export const isTerminal = (status: string | null | undefined): boolean => terminalStatuses.some((terminal) => terminal === status);

const stuckOutcomes = { cancel: 'cancelled', fail: 'failed', retry: 'requeued', none: 'left running' } as const;

/**
 * What was done with a stuck task, in words ("requeued", "left running"). The
 * action as the domain spells it (`retry`) or as the API does (`RETRY`).
 */
export const stuckActionOutcome = (action: keyof typeof stuckOutcomes | Uppercase<keyof typeof stuckOutcomes>): string =>
  stuckOutcomes[action.toLowerCase() as keyof typeof stuckOutcomes];
