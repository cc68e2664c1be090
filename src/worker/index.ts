export { createWorker, type TaskContext, type TaskHandler, type Worker, type WorkerOptions, type WorkerEvents, type WorkerTask } from './worker.js';
export { createTaskwardenClient, TaskwardenClientError, type TaskwardenClient, type TaskwardenClientOptions } from '../client/client.js';
