export { createTaskwardenClient, TaskwardenClientError, type TaskwardenClient, type TaskwardenClientOptions, type Sink } from './client.js';
export type * from '../generated/graphql/graphql.js';
