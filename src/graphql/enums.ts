import { stuckActions } from '../tasks/stuck.js';
import { TaskEventType, TaskStatus } from '../tasks/model.js';
import { stuckReasons } from '../tasks/stuck.js';
import { builder } from './builder.js';

export const TaskStatusEnum = builder.enumType(TaskStatus, {
  name: 'TaskStatus',
  description: 'PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED. Terminal states never change again.',
});

export const TaskEventTypeEnum = builder.enumType(TaskEventType, {
  name: 'TaskEventType',
  description: 'What a history entry records: a transition, a progress change, a stuck detection or a deletion.',
});

export const StuckReasonEnum = builder.enumType('StuckReason', {
  description: 'Why a running task counts as stuck.',
  values: {
    NO_HEARTBEAT: { value: 'NO_HEARTBEAT', description: 'Nothing from its worker for longer than the timeout: the worker died or is cut off.' },
    OVERTIME: { value: 'OVERTIME', description: 'It has run longer than its own timeoutMinutes.' },
    NO_PROGRESS: {
      value: 'NO_PROGRESS',
      description: 'Heartbeats arrive but progress and message have not changed for longer than the timeout: alive but frozen.',
    },
  } satisfies Record<(typeof stuckReasons)[number], unknown>,
});

export const StuckActionEnum = builder.enumType('StuckAction', {
  description: 'What is done with a stuck task.',
  values: {
    CANCEL: { value: 'cancel' as const, description: 'Mark it CANCELLED.' },
    FAIL: { value: 'fail' as const, description: 'Mark it FAILED, with the reason as its error.' },
    RETRY: { value: 'retry' as const, description: 'Put it back to PENDING for another attempt; FAILED when no attempts are left.' },
    NONE: { value: 'none' as const, description: 'Leave it running; alert once per stuck episode.' },
  } satisfies Record<(typeof stuckActions)[number] extends infer A ? Uppercase<A & string> : never, unknown>,
});
