/**
 * Who may do what: the one place that decides. Roles are for API tokens;
 * permissions are what the GraphQL fields ask for (see graphql/builder.ts).
 */
export const roles = ['viewer', 'worker', 'operator', 'admin'] as const;
export type Role = (typeof roles)[number];

export const permissions = {
  /** Queries and subscriptions. */
  read: ['viewer', 'worker', 'operator', 'admin'],
  /** createTask, createTasks: submitting work is what pipelines (workers) and operators both do. */
  submit: ['worker', 'operator', 'admin'],
  /** claim, start, report, complete, fail, release: and only with the lease of the task. */
  work: ['worker', 'admin'],
  /** stop, force, cleanup, delete, runMonitorSweep; a kind's limit, pause and resume. */
  operate: ['operator', 'admin'],
  /** Scraping /metrics (a worker token, spread over many machines, does not get it). */
  metrics: ['viewer', 'operator', 'admin'],
  /** Managing API tokens. */
  admin: ['admin'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof permissions;

export const can = (role: Role, permission: Permission) => (permissions[permission] as readonly Role[]).includes(role);

/** Who is calling: a token, or anyone at all when no token exists and the server only listens on loopback. */
export interface Principal {
  /** The token's name ("local" in open mode). Recorded as the actor of operator actions. */
  name: string;
  role: Role;
  /** Identifies the token for revocation; null in open mode. */
  tokenId: string | null;
  source: 'database' | 'environment' | 'open';
}

export const openPrincipal: Principal = { name: 'local', role: 'admin', tokenId: null, source: 'open' };

/** The API token behind this caller (its name), recorded beside every history entry it writes; none in open mode. */
export const tokenNameOf = (principal: Principal): string | null => (principal.source === 'open' ? null : principal.name);

/** The name recorded in a task's history for this caller's operator actions: the token's name; none (so "operator") when the server is open. */
export const actorOf = (principal: Principal): string | undefined => tokenNameOf(principal) ?? undefined;
