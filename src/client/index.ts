export { createTaskwardenClient, TaskwardenClientError, type TaskwardenClient, type TaskwardenClientOptions, type Sink, type TypedDocument } from './client.js';
export type { FollowFilter, FollowHandlers } from './follow.js';
export { isTerminal, stuckActionOutcome, taskStatuses, terminalStatuses } from '../tasks/lifecycle.js';
export type * from '../generated/graphql/graphql.js';
