import { builder } from './builder.js';
import './enums.js';
import './task.js';
import './queues.js';
import './task-event.js';
import './stats.js';
import './monitor.js';
import './tokens.js';
import './alerts.js';

export type { Context } from './context.js';

export const schema = builder.toSchema({ sortSchema: true });
