import type { Clock } from '../clock.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { TaskStatus, type Db, type Task } from './model.js';
import { holdbackOf, queueFigures, type Holdback, type KindQueueFigures } from './sql/queue-figures.js';
import * as valid from './validate.js';

export type { KindQueueFigures };

export type QueueService = ReturnType<typeof createQueueService>;

/** The largest per-kind limit one may set (more is no limit at all in practice). */
export const maxKindLimit = 100_000;

/**
 * Per-kind scheduling settings (limit, pause) and the figures of each kind's
 * queue. The claim reads the settings itself (see sql/claim.ts): nothing here
 * is cached, so every instance obeys a change at its next claim.
 */
export function createQueueService({ prisma, clock }: { prisma: PrismaClient; clock: Clock }) {
  const figuresOf = async (kind: string): Promise<KindQueueFigures> =>
    (await queueFigures(prisma, clock.now(), kind))[0] ?? {
      kind,
      pending: 0,
      delayed: 0,
      blocked: 0,
      running: 0,
      maxRunning: null,
      paused: false,
      oldestReadyAgeSeconds: 0,
    };

  const upsert = (db: Db, kind: string, change: { maxRunning?: number | null; paused?: boolean }) =>
    db.kindQueue.upsert({
      where: { kind },
      create: { kind, maxRunning: change.maxRunning ?? null, paused: change.paused ?? false, updatedAt: clock.now() },
      update: { ...change, updatedAt: clock.now() },
    });

  return {
    /** Every kind with pending or running tasks, or with settings. */
    list: (): Promise<KindQueueFigures[]> => queueFigures(prisma, clock.now()),

    get: (kind: string) => figuresOf(valid.text(kind, 'kind', valid.limits.kind)),

    /** At most `maxRunning` tasks of this kind run at once (null: unlimited). Running tasks are not touched. */
    async setLimit(kind: string, maxRunning: number | null): Promise<KindQueueFigures> {
      valid.text(kind, 'kind', valid.limits.kind);
      if (maxRunning !== null) valid.wholeNumber(maxRunning, 'maxRunning', 0, maxKindLimit);
      await upsert(prisma, kind, { maxRunning });
      return figuresOf(kind);
    },

    /** Claims of this kind get nothing until it is resumed. Running tasks are not touched. */
    async pause(kind: string): Promise<KindQueueFigures> {
      await upsert(prisma, valid.text(kind, 'kind', valid.limits.kind), { paused: true });
      return figuresOf(kind);
    },

    async resume(kind: string): Promise<KindQueueFigures> {
      await upsert(prisma, valid.text(kind, 'kind', valid.limits.kind), { paused: false });
      return figuresOf(kind);
    },

    /** KIND_LIMITS at start: these kinds get these limits (other kinds keep theirs). */
    async applyLimits(limits: Readonly<Record<string, number>>): Promise<void> {
      for (const [kind, maxRunning] of Object.entries(limits)) await upsert(prisma, kind, { maxRunning });
    },

    /** Why a pending task is not claimable now ("dependency …", "delay …", "pause …", "limit …"), or null. */
    async waitingFor(task: Task): Promise<string | null> {
      if (task.status !== TaskStatus.PENDING) return null;
      const holdback = await holdbackOf(prisma, task.id);
      return holdback && describeHoldback(holdback, task.kind, clock.now());
    },
  };
}

/** The first thing that holds a pending task back, in the order they are lifted: dependency, delay, pause, limit. */
export function describeHoldback(h: Holdback, kind: string, now: Date): string | null {
  if (h.unfinishedDependencies > 0) return `dependency: ${h.unfinishedDependencies} not completed yet`;
  if (h.runAt && h.runAt.getTime() > now.getTime()) return `delay: until ${h.runAt.toISOString()}`;
  if (h.paused) return `pause: kind "${kind}" is paused`;
  if (h.maxRunning !== null && h.running >= h.maxRunning) return `limit: kind "${kind}" runs ${h.running} of ${h.maxRunning}`;
  return null;
}
