import { createServer } from 'node:net';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createEventBus } from '../src/events.js';
import type { TaskChange } from '../src/tasks/model.js';
import { subscribedInRedis } from './support/redis.js';

const change = (id: number): TaskChange => ({
  event: {
    id: BigInt(id),
    xact: 1000n + BigInt(id),
    taskId: '6f1c8a0e-58a4-4b8e-9b0e-0d6f7f0b1a11',
    kind: 'backtest',
    type: 'PROGRESS',
    fromStatus: 'RUNNING',
    toStatus: 'RUNNING',
    progress: id,
    message: null,
    actor: 'w',
    tokenName: 'ci-runner',
    reason: null,
    attempt: 1,
    at: new Date('2026-03-01T09:30:00.123Z'),
  },
  task: null,
});

describe('the event bus', () => {
  it('delivers what is published after a subscription starts, in order', async () => {
    const bus = createEventBus();
    const sub = bus.subscribe('task:updated');
    bus.publish('task:updated', change(1));
    bus.publish('task:updated', change(2));
    expect((await sub.next()).value.event.id).toBe(1n);
    expect((await sub.next()).value.event.id).toBe(2n);
    expect(bus.openSubscriptions).toBe(1);
    await sub.return!();
    expect(bus.openSubscriptions).toBe(0);
  });

  it('ends a consumer that falls too far behind, after what it buffered, instead of growing without bound', async () => {
    const bus = createEventBus();
    const slow = bus.subscribe('task:updated', { bufferSize: 3 });
    for (let i = 1; i <= 10; i++) bus.publish('task:updated', change(i));
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await slow.next()).value.event.id);
    expect(got).toEqual([1n, 2n, 3n]);
    await expect(slow.next()).rejects.toMatchObject({ code: 'SUBSCRIPTION_OVERFLOW' });
    expect(bus.openSubscriptions).toBe(0);
  });

  it('completes every open subscription at shutdown', async () => {
    const bus = createEventBus();
    const a = bus.subscribe('task:updated');
    const b = bus.subscribe('task:stuck');
    const pending = a.next();
    bus.endSubscriptions();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(await b.next()).toEqual({ value: undefined, done: true });
    expect(bus.openSubscriptions).toBe(0);
  });

  describe.runIf(process.env.TEST_REDIS_URL)('across instances through Redis', () => {
    it('carries events between buses with dates and ids intact', async () => {
      const a = createEventBus({ redisUrl: process.env.TEST_REDIS_URL });
      const b = createEventBus({ redisUrl: process.env.TEST_REDIS_URL });
      const sub = b.subscribe('task:updated');
      await subscribedInRedis('taskwarden:task:updated');
      a.publish('task:updated', change(7));
      const received = (await sub.next()).value;
      expect(received).toEqual(change(7));
      expect(received.event.at).toBeInstanceOf(Date);
      await sub.return!();
      await a.close();
      await b.close();
    });
  });
});

// Found by the chaos suite's Redis restart: with no error listener, ioredis printed every reconnect
// attempt of the outage to stderr as an "Unhandled error event".
describe('the event bus while Redis is unreachable', () => {
  it('logs one warning for the outage and prints nothing of its own', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const lines: any[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const printed = vi.spyOn(console, 'error');
    const bus = createEventBus({ redisUrl: `redis://127.0.0.1:${port}`, log });
    try {
      const deadline = Date.now() + 10_000;
      while (lines.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // Several reconnect attempts fail meanwhile.
      await new Promise((r) => setTimeout(r, 1000));
      expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/^Redis is unreachable/)]);
      expect(printed.mock.calls.filter((call) => String(call[0]).includes('ioredis'))).toEqual([]);
    } finally {
      printed.mockRestore();
      await bus.close();
    }
  });
});
