// The lifecycle's plain facts, with no import at all: the SDK's public entry (src/client/index.ts)
// re-exports them, so the CLI and the dashboard read the same values as the domain.

/** Every status, in lifecycle order: PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED. */
export const taskStatuses = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;

/** The statuses a task never leaves (and the only ones it can be deleted in). */
export const terminalStatuses: readonly (typeof taskStatuses)[number][] = ['COMPLETED', 'FAILED', 'CANCELLED'];

export const isTerminal = (status: string | null | undefined): boolean => terminalStatuses.some((terminal) => terminal === status);
