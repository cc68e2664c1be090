import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import superjson from 'superjson';
import { TaskwardenError } from './errors.js';
import type { StuckAction } from './config.js';
import type { Task, TaskChange } from './tasks/model.js';
import type { StuckReason } from './tasks/stuck.js';

/** A stuck task the monitor (or a cleanup) found, and what was done about it. */
export interface StuckAlert {
  /** The task after the action. */
  task: Task;
  reason: StuckReason;
  stuckSince: Date;
  stuckForSeconds: number;
  detectedAt: Date;
  actionTaken: StuckAction;
  actor: string;
}

/** What is published, by whom. Payloads are published only after their write committed. */
export interface Topics {
  /** Every task write that earned a history entry (transitions, progress changes, deletions). */
  'task:updated': TaskChange;
  /** Every stuck task that was handled (once per stuck episode). */
  'task:stuck': StuckAlert;
}

export type Topic = keyof Topics;

export interface SubscribeOptions {
  /**
   * How many events may wait for a slow consumer. Past that the subscription
   * ends with SUBSCRIPTION_OVERFLOW instead of growing memory without bound;
   * a `taskUpdated` client resumes with `afterEventId` and loses nothing.
   */
  bufferSize?: number;
}

export interface EventBus {
  publish<K extends Topic>(topic: K, payload: Topics[K]): void;
  /** Starts listening at once (before the first `next()`), so nothing published after this call is missed. */
  subscribe<K extends Topic>(topic: K, options?: SubscribeOptions): AsyncIterableIterator<Topics[K]>;
  /** Open subscriptions on this instance. */
  readonly openSubscriptions: number;
  /** Ends every open subscription (they complete normally); used at shutdown. */
  endSubscriptions(): void;
  close(): Promise<void>;
}

const DEFAULT_BUFFER = 1000;

/**
 * In-process by default; with a Redis URL, events cross instances, so a
 * dashboard on one instance sees progress reported to another.
 */
export function createEventBus(options: { redisUrl?: string } = {}): EventBus {
  let target: EventTarget;
  let close = async () => {};
  if (options.redisUrl) {
    const publishClient = new Redis(options.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3 });
    const subscribeClient = new Redis(options.redisUrl, { lazyConnect: false });
    // Dates and BigInt ids survive the trip; plain JSON would turn them into strings.
    target = createRedisEventTarget({ publishClient, subscribeClient, serializer: superjson }) as unknown as EventTarget;
    close = async () => {
      publishClient.disconnect();
      subscribeClient.disconnect();
    };
  } else {
    target = new EventTarget();
  }
  const channel = (topic: Topic) => `taskwarden:${topic}`;
  const open = new Set<() => unknown>();

  return {
    publish(topic, payload) {
      target.dispatchEvent(new CustomEvent(channel(topic), { detail: payload }));
    },
    subscribe<K extends Topic>(topic: K, { bufferSize = DEFAULT_BUFFER }: SubscribeOptions = {}) {
      const queue: Topics[K][] = [];
      let waiting: ((result: IteratorResult<Topics[K]>) => void) | undefined;
      let done = false;
      let overflowed = false;

      const listener = (event: Event) => {
        if (done || overflowed) return;
        const payload = (event as CustomEvent<Topics[K]>).detail;
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ value: payload, done: false });
        } else if (queue.length < bufferSize) {
          queue.push(payload);
        } else {
          overflowed = true;
          target.removeEventListener(channel(topic), listener);
        }
      };
      target.addEventListener(channel(topic), listener);

      const finish = (): IteratorResult<Topics[K]> => {
        if (!done) {
          done = true;
          open.delete(finish);
          queue.length = 0;
          target.removeEventListener(channel(topic), listener);
          waiting?.({ value: undefined, done: true });
          waiting = undefined;
        }
        return { value: undefined, done: true };
      };

      open.add(finish);

      const iterator: AsyncIterableIterator<Topics[K]> = {
        next() {
          if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false });
          if (done) return Promise.resolve({ value: undefined, done: true });
          if (overflowed) {
            finish();
            return Promise.reject(
              new TaskwardenError(
                'SUBSCRIPTION_OVERFLOW',
                `This subscription fell more than ${bufferSize} events behind and was ended. Subscribe again (taskUpdated accepts afterEventId to resume without a gap).`,
              ),
            );
          }
          return new Promise((resolve) => {
            waiting = resolve;
          });
        },
        return() {
          return Promise.resolve(finish());
        },
        throw(error) {
          finish();
          return Promise.reject(error);
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
    get openSubscriptions() {
      return open.size;
    },
    endSubscriptions() {
      for (const finish of [...open]) finish();
    },
    close: () => close(),
  };
}
