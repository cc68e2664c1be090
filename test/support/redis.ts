import { Redis } from 'ioredis';

/** Waits until Redis counts a subscriber on the channel (SUBSCRIBE is sent without waiting for it). */
export async function subscribedInRedis(channel: string, count = 1) {
  const redis = new Redis(process.env.TEST_REDIS_URL!);
  try {
    for (let i = 0; i < 200; i++) {
      const [, subscribers] = (await redis.pubsub('NUMSUB', channel)) as [string, number];
      if (subscribers >= count) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`nobody subscribed to ${channel}`);
  } finally {
    redis.disconnect();
  }
}
