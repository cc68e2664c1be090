import { createContextCache } from '@pothos/core';
import DataLoader from 'dataloader';
import type { Task, TaskEvent, TaskEventType } from '../tasks/model.js';
import { cursorOf } from '../tasks/position.js';
import { cursorArg, firstArg, idArg, optionalIdArg, pageSize } from './args.js';
import { builder } from './builder.js';
import type { Context } from './context.js';
import { TaskEventTypeEnum, TaskStatusEnum } from './enums.js';
// One way only: Task.events is added here, so task.ts needs nothing from this file.
import { TaskRef } from './task.js';

/** A history entry, with the task as it stood right after it when it came live. */
type TaskEventShape = TaskEvent & { snapshot?: Task | null; transient?: number };

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
const MAX_EVENTS = 5000;

builder.prismaObjectField('Task', 'events', (t) =>
  t.field({
    type: [TaskEventRef],
    description: 'Its history, oldest first: who did what, and why.',
    args: {
      types: t.arg({ type: [TaskEventTypeEnum], required: false, description: 'Only these kinds of entries.' }),
      first: t.arg.int(firstArg(500, `At most this many entries (up to ${MAX_EVENTS}).`)),
    },
    resolve: (task, args, ctx) => historyLoader(ctx, args.types, pageSize(args.first, MAX_EVENTS)).load(task.id),
  }),
);

/**
 * Task.events for every task a request lists, read in one statement per tick (not one per task),
 * one loader per request and argument set. Nothing is cached across ticks: a subscription keeps its
 * context for every event it delivers, and each must show the history as it is then.
 */
const historyLoaders = createContextCache((_ctx: Context) => new Map<string, DataLoader<string, TaskEvent[]>>());

function historyLoader(ctx: Context, types: readonly TaskEventType[] | null | undefined, limit: number): DataLoader<string, TaskEvent[]> {
  const loaders = historyLoaders(ctx);
  const key = JSON.stringify([types ?? null, limit]);
  let loader = loaders.get(key);
  if (!loader) {
    loader = new DataLoader(
      async (taskIds) => {
        const histories = await ctx.services.tasks.histories(taskIds, { types, limit });
        return taskIds.map((id) => histories.get(id) ?? []);
      },
      { cache: false },
    );
    loaders.set(key, loader);
  }
  return loader;
}

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
      first: t.arg.int(firstArg(100)),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.tasks.history({
        taskId: optionalIdArg(args.taskId),
        kinds: args.kinds,
        types: args.types,
        after: cursorArg(args.afterEventId),
        limit: pageSize(args.first, MAX_PAGE),
      }),
  }),
}));

builder.subscriptionFields((t) => ({
  taskUpdated: t.field({
    authScopes: { read: true },
    type: TaskEventRef,
    description:
      "Every transition and progress change, for one task or for some kinds, in the history's order. With afterEventId (the id of the last entry received) it first replays what came after that entry, so a reconnecting client gets every entry once. An id from a server before this order was kept is refused with STALE_CURSOR.",
    args: { id: t.arg.id(), kinds: t.arg.stringList(), afterEventId: t.arg.id() },
    subscribe: async (_root, args, ctx) =>
      ctx.live(
        await ctx.services.live.taskUpdates({
          taskId: optionalIdArg(args.id),
          kinds: args.kinds,
          after: cursorArg(args.afterEventId),
        }),
      ),
    resolve: (change) => ({ ...change.event, snapshot: change.task, transient: change.transient }),
  }),
  taskProgress: t.field({
    authScopes: { read: true },
    type: TaskRef,
    description: "The task's current state, then each change; completes when it reaches a terminal state.",
    args: { id: t.arg.id({ required: true }) },
    subscribe: async (_root, args, ctx) => ctx.live(await ctx.services.live.taskProgress(idArg(args.id))),
    resolve: (task) => task,
  }),
}));
