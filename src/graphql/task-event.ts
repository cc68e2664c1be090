import type { Task, TaskEvent } from '../tasks/model.js';
import { badInput } from '../errors.js';
import { cursorOf, parseCursor } from '../tasks/position.js';
import { builder } from './builder.js';
import { TaskEventTypeEnum, TaskStatusEnum } from './enums.js';
import { TaskRef } from './task.js';

/** A history entry, with the task as it stood right after it when it came live. */
type TaskEventShape = TaskEvent & { snapshot?: Task | null };

export const TaskEventRef = builder.objectRef<TaskEventShape>('TaskEvent');

TaskEventRef.implement({
  description: 'One entry of a task history: a transition, a progress change, a stuck detection or a deletion.',
  fields: (t) => ({
    id: t.id({
      description:
        'Opaque: where this entry stands in the one order every reader gets (the same for history reads and live streams). Pass the last one received as afterEventId to resume.',
      resolve: (e) => cursorOf(e),
    }),
    taskId: t.exposeID('taskId'),
    kind: t.exposeString('kind', { description: "The task's kind." }),
    type: t.expose('type', { type: TaskEventTypeEnum }),
    fromStatus: t.expose('fromStatus', { type: TaskStatusEnum, nullable: true }),
    toStatus: t.expose('toStatus', { type: TaskStatusEnum, nullable: true, description: 'Null for a deletion.' }),
    progress: t.exposeFloat('progress', { nullable: true }),
    message: t.exposeString('message', { nullable: true }),
    actor: t.exposeString('actor', { description: 'A worker id, "monitor", "operator", "api", or a token name.' }),
    tokenName: t.exposeString('tokenName', {
      nullable: true,
      description:
        'The API token that made this change (its name); null in open mode and for the monitor or the CLI on the database. A worker chooses its own worker id (the actor of its transitions); it cannot choose this.',
    }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why: a stuck reason, an operator note, the first line of an error.' }),
    attempt: t.exposeInt('attempt'),
    at: t.expose('at', { type: 'DateTime' }),
    task: t.field({
      type: TaskRef,
      nullable: true,
      description: 'The task right after this entry when it arrives live; its current state when read from history; null once deleted.',
      resolve: (event, _args, ctx) => (event.snapshot !== undefined ? event.snapshot : ctx.services.tasks.get(event.taskId)),
    }),
  }),
});

const MAX_PAGE = 1000;

builder.queryFields((t) => ({
  taskEvents: t.field({
    authScopes: { read: true },
    type: [TaskEventRef],
    description:
      'History entries in the order taskUpdated delivers them, for one task or all, after an event id. Only entries that can no longer get company before them are listed, so the last id returned is a cursor that misses nothing.',
    args: {
      taskId: t.arg.id(),
      kinds: t.arg.stringList(),
      types: t.arg({ type: [TaskEventTypeEnum], required: false }),
      afterEventId: t.arg.id(),
      first: t.arg.int({ defaultValue: 100, required: true }),
    },
    resolve: (_root, args, ctx) => {
      if (args.first < 1 || args.first > MAX_PAGE) throw badInput('first', `must be from 1 to ${MAX_PAGE}`);
      return ctx.services.tasks.history({
        taskId: args.taskId == null ? null : String(args.taskId),
        kinds: args.kinds,
        types: args.types,
        after: args.afterEventId == null ? null : parseCursor(String(args.afterEventId)),
        limit: args.first,
      });
    },
  }),
}));

builder.subscriptionFields((t) => ({
  taskUpdated: t.field({
    authScopes: { read: true },
    type: TaskEventRef,
    description:
      'Every transition and progress change, for one task or for some kinds, in the history\'s order. With afterEventId (the id of the last entry received) it first replays what came after that entry, so a reconnecting client gets every entry once. An id from a server before this order was kept is refused with STALE_CURSOR.',
    args: { id: t.arg.id(), kinds: t.arg.stringList(), afterEventId: t.arg.id() },
    subscribe: async (_root, args, ctx) =>
      ctx.live(
        await ctx.services.live.taskUpdates({
          taskId: args.id == null ? null : String(args.id),
          kinds: args.kinds,
          after: args.afterEventId == null ? null : parseCursor(String(args.afterEventId)),
        }),
      ),
    resolve: (change) => ({ ...change.event, snapshot: change.task }),
  }),
  taskProgress: t.field({
    authScopes: { read: true },
    type: TaskRef,
    description: "The task's current state, then each change; completes when it reaches a terminal state.",
    args: { id: t.arg.id({ required: true }) },
    subscribe: async (_root, args, ctx) => ctx.live(await ctx.services.live.taskProgress(String(args.id))),
    resolve: (task) => task,
  }),
}));
