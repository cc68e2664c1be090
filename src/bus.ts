import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import type { Logger } from './log.js';
import superjson from 'superjson';
import { TaskwardenError } from './errors.js';

// A publish/subscribe bus, generic over its topics: it knows nothing of tasks (events.ts names Taskwarden's).

export interface SubscribeOptions {
  /**
   * How many events may wait for a slow consumer. Past that the subscription
   * ends with SUBSCRIPTION_OVERFLOW instead of growing memory without bound;
   * a `taskUpdated` client resumes with `afterEventId` and loses nothing.
   */
  bufferSize?: number;
}

/** A bus over the topics of `T`: each key a topic, its type the payload. */
export interface Bus<T> {
  publish<K extends keyof T & string>(topic: K, payload: T[K]): void;
  /** Calls `listener` with each payload as it arrives, with no queue (for this process's own machinery); returns the function that stops it. */
  listen<K extends keyof T & string>(topic: K, listener: (payload: T[K]) => void): () => void;
  /** Open subscriptions to this topic on this instance. */
  subscriberCount(topic: keyof T & string): number;
  /** Starts listening at once (before the first `next()`), so nothing published after this call is missed. */
  subscribe<K extends keyof T & string>(topic: K, options?: SubscribeOptions): AsyncIterableIterator<T[K]>;
  /** Open subscriptions on this instance. */
  readonly openSubscriptions: number;
  /** Ends every open subscription (they complete normally); used at shutdown. */
  endSubscriptions(): void;
  close(): Promise<void>;
}

const DEFAULT_BUFFER = 1000;

export interface BusOptions<T> {
  /** Events cross instances through this Redis; without it they stay in this process. */
  redisUrl?: string;
  bufferSize?: number;
  /** Topics each instance makes for itself, never sent to the others. */
  localTopics?: readonly (keyof T & string)[];
  /** Where a Redis outage is reported (one line when it starts, one when it ends). */
  log?: Logger;
}

/**
 * In-process by default; with a Redis URL, events cross instances, so a
 * dashboard on one instance sees progress reported to another. Each topic
 * has one listener on the transport however many subscribe; the bus fans
 * out to its subscribers itself.
 */
export function createBus<T>(options: BusOptions<T> = {}): Bus<T> {
  type Topic = keyof T & string;
  const localTopics: ReadonlySet<Topic> = new Set(options.localTopics ?? []);
  let target: EventTarget;
  let close = async () => {};
  if (options.redisUrl) {
    const publishClient = new Redis(options.redisUrl, { maxRetriesPerRequest: 3 });
    const subscribeClient = new Redis(options.redisUrl);
    // ioredis reconnects by itself; without a listener it prints every failed attempt of an outage to
    // stderr as an "Unhandled error event" (found by the chaos suite's Redis restart). One line per outage.
    let down = false;
    for (const client of [publishClient, subscribeClient]) {
      client.on('error', (error: Error) => {
        if (down) return;
        down = true;
        options.log?.warn({ err: error.message }, "Redis is unreachable; live events between instances travel by the event feeds' poll until it is back");
      });
      client.on('ready', () => {
        if (!down) return;
        down = false;
        options.log?.info('Redis is reachable again');
      });
    }
    // The event target fires its publishes and forgets them: one that fails (Redis down, or this bus
    // closed while a write was finishing) must not become an unhandled rejection. Nothing is lost to
    // other instances: their event feeds also poll the history (tasks/feed.ts).
    const sender = publishClient as unknown as { publish: (...args: unknown[]) => Promise<unknown> };
    const publish = sender.publish.bind(publishClient);
    sender.publish = (...args) => publish(...args).catch(() => 0);
    // Dates and BigInt ids survive the trip; plain JSON would turn them into strings.
    target = createRedisEventTarget({ publishClient, subscribeClient, serializer: superjson }) as unknown as EventTarget;
    close = async () => {
      publishClient.disconnect();
      subscribeClient.disconnect();
    };
  } else {
    target = new EventTarget();
  }
  const local = new EventTarget();
  const targetOf = (topic: Topic) => (localTopics.has(topic) ? local : target);
  const channel = (topic: Topic) => `taskwarden:${topic}`;
  const subscribers = new Map<Topic, Set<Member>>();
  const listeners = new Map<Topic, (event: Event) => void>();

  const join = (topic: Topic, subscription: Member) => {
    let set = subscribers.get(topic);
    if (!set) {
      const members = new Set<Member>();
      set = members;
      subscribers.set(topic, members);
      const listener = (event: Event) => {
        const payload = (event as CustomEvent).detail;
        for (const member of members) member.push(payload);
      };
      listeners.set(topic, listener);
      targetOf(topic).addEventListener(channel(topic), listener);
    }
    set.add(subscription);
  };
  const leave = (topic: Topic, subscription: Member) => {
    const set = subscribers.get(topic);
    if (!set?.delete(subscription) || set.size > 0) return;
    subscribers.delete(topic);
    targetOf(topic).removeEventListener(channel(topic), listeners.get(topic)!);
    listeners.delete(topic);
  };

  return {
    publish(topic, payload) {
      targetOf(topic).dispatchEvent(new CustomEvent(channel(topic), { detail: payload }));
    },
    listen(topic, listener) {
      const member: Member = { push: listener, counted: false };
      join(topic, member);
      return () => leave(topic, member);
    },
    subscriberCount(topic) {
      let count = 0;
      for (const member of subscribers.get(topic) ?? []) if (member.counted) count++;
      return count;
    },
    subscribe<K extends Topic>(topic: K, { bufferSize = options.bufferSize ?? DEFAULT_BUFFER }: SubscribeOptions = {}) {
      const subscription: Subscription<T[K]> = new Subscription<T[K]>(bufferSize, () => leave(topic, subscription));
      join(topic, subscription);
      return subscription;
    },
    get openSubscriptions() {
      let count = 0;
      for (const set of subscribers.values()) for (const member of set) if (member.counted) count++;
      return count;
    },
    endSubscriptions() {
      for (const set of [...subscribers.values()]) for (const member of [...set]) if (member instanceof Subscription) member.end();
    },
    close: () => close(),
  };
}

/** What a topic hands its payloads to: a subscription, or a listener of the process's own. */
interface Member {
  push(payload: any): void;
  /** Subscriptions count as open subscriptions; listeners do not. */
  readonly counted: boolean;
}

/** One subscriber's queue: bounded, ended on overflow, and an async iterator for GraphQL. */
class Subscription<T> implements AsyncIterableIterator<T>, Member {
  readonly counted = true;
  private readonly queue: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private done = false;
  private overflowed = false;

  constructor(
    private readonly bufferSize: number,
    private readonly onEnd: () => void,
  ) {}

  push(payload: T) {
    if (this.done || this.overflowed) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: payload, done: false });
    } else if (this.queue.length < this.bufferSize) {
      this.queue.push(payload);
    } else {
      // Stop taking events; the consumer gets what was buffered, then the overflow error.
      this.overflowed = true;
      this.onEnd();
    }
  }

  end(): IteratorResult<T> {
    if (!this.done) {
      this.done = true;
      this.queue.length = 0;
      this.onEnd();
      this.waiting?.({ value: undefined, done: true });
      this.waiting = undefined;
    }
    return { value: undefined, done: true };
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    if (this.overflowed) {
      this.end();
      return Promise.reject(
        new TaskwardenError(
          'SUBSCRIPTION_OVERFLOW',
          `This subscription fell more than ${this.bufferSize} events behind and was ended. Subscribe again (taskUpdated accepts afterEventId to resume without a gap).`,
        ),
      );
    }
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    return Promise.resolve(this.end());
  }

  throw(error: unknown): Promise<IteratorResult<T>> {
    this.end();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}
