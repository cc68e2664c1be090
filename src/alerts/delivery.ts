import type { AlertSettings } from './settings.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { Logger } from '../log.js';
import type { AlertPayload } from './rules.js';
import { requestBody, type Webhook } from './webhooks.js';

const BATCH = 20;
/** How long a claimed delivery stays this instance's before another may take it over (a crashed sender). */
const CLAIM_SECONDS = 30;
const SEND_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 5 * 60_000;

export type DeliveryOutcome = 'delivered' | 'retry' | 'failed';

interface Claimed {
  id: bigint;
  destination: string;
  attempts: number;
  payload: AlertPayload;
}

/**
 * Sends the outbox to the webhooks: at least once, with the alert's
 * idempotency key, retrying with exponential backoff and jitter, marking
 * each delivery DELIVERED or, after `maxAttempts`, FAILED. Several instances
 * can run it: a delivery is claimed (FOR UPDATE SKIP LOCKED, then a lease)
 * before it is sent.
 */
export function createAlertDelivery({
  prisma,
  settings,
  webhooks,
  log,
  onOutcome,
}: {
  prisma: PrismaClient;
  settings: AlertSettings;
  webhooks: Webhook[];
  log: Logger;
  onOutcome?: (outcome: DeliveryOutcome) => void;
}) {
  const byId = new Map(webhooks.map((w) => [w.id, w]));
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let inFlight: Promise<void> = Promise.resolve();
  let again = false;

  async function claim(): Promise<Claimed[]> {
    return prisma.$queryRaw<Claimed[]>`
      UPDATE "AlertDelivery" AS d SET "lockedUntil" = now() + make_interval(secs => ${CLAIM_SECONDS})
      FROM "Alert" AS a
      WHERE a.id = d."alertId" AND d.id IN (
        SELECT id FROM "AlertDelivery"
        WHERE status = 'PENDING' AND "nextAttemptAt" <= now() AND ("lockedUntil" IS NULL OR "lockedUntil" < now())
        ORDER BY "nextAttemptAt", id
        LIMIT ${BATCH}
        FOR UPDATE SKIP LOCKED)
      RETURNING d.id, d.destination, d.attempts, a.payload`;
  }

  async function send(delivery: Claimed): Promise<void> {
    const webhook = byId.get(delivery.destination);
    const attempts = delivery.attempts + 1;
    if (!webhook) {
      await settle(delivery.id, { status: 'FAILED', attempts, lastError: 'this webhook is no longer configured' });
      onOutcome?.('failed');
      return;
    }
    const { status, error } = await post(webhook, delivery.payload);
    if (!error) {
      await settle(delivery.id, { status: 'DELIVERED', attempts, lastStatus: status, deliveredAt: true });
      log.info({ alert: delivery.payload.id, webhook: webhook.display, attempts }, 'alert delivered');
      onOutcome?.('delivered');
    } else if (attempts >= settings.maxAttempts) {
      await settle(delivery.id, { status: 'FAILED', attempts, lastStatus: status, lastError: error });
      log.error({ alert: delivery.payload.id, webhook: webhook.display, attempts, error }, 'alert delivery failed for good; retry it with retryAlert');
      onOutcome?.('failed');
    } else {
      const backoff = Math.min(settings.retryBaseMs * 2 ** (attempts - 1), MAX_BACKOFF_MS) * (0.75 + Math.random() * 0.5);
      await settle(delivery.id, { status: 'PENDING', attempts, lastStatus: status, lastError: error, retryInMs: Math.round(backoff) });
      log.warn({ alert: delivery.payload.id, webhook: webhook.display, attempts, error, retryInMs: Math.round(backoff) }, 'alert delivery failed; will retry');
      onOutcome?.('retry');
    }
  }

  function settle(
    id: bigint,
    r: {
      status: 'PENDING' | 'DELIVERED' | 'FAILED';
      attempts: number;
      lastStatus?: number | null;
      lastError?: string | null;
      deliveredAt?: boolean;
      retryInMs?: number;
    },
  ) {
    return prisma.$executeRaw`
      UPDATE "AlertDelivery" SET
        status = ${r.status}::"DeliveryStatus", attempts = ${r.attempts}, "lockedUntil" = NULL,
        "lastStatus" = ${r.lastStatus ?? null}, "lastError" = ${r.lastError ?? null},
        "deliveredAt" = CASE WHEN ${r.deliveredAt ?? false} THEN now() ELSE "deliveredAt" END,
        "nextAttemptAt" = now() + make_interval(secs => ${(r.retryInMs ?? 0) / 1000})
      WHERE id = ${id}`;
  }

  /** Sends everything due, batch after batch; returns how long until the next delivery falls due. */
  async function drain(): Promise<number> {
    for (;;) {
      const batch = await claim();
      await Promise.all(batch.map((delivery) => send(delivery).catch((error) => log.error({ err: error }, 'could not record a delivery'))));
      if (batch.length < BATCH) break;
    }
    const [next] = await prisma.$queryRaw<{ wait: number | null }[]>`
      SELECT EXTRACT(EPOCH FROM (min(GREATEST("nextAttemptAt", COALESCE("lockedUntil", "nextAttemptAt"))) - now())) * 1000 AS wait
      FROM "AlertDelivery" WHERE status = 'PENDING'`;
    return next?.wait == null ? settings.pollIntervalMs : Math.max(0, Math.min(Number(next.wait), settings.pollIntervalMs));
  }

  function tick() {
    if (!running) return;
    timer = undefined;
    inFlight = drain()
      .catch((error) => {
        log.warn({ err: error }, 'alert delivery loop could not read the outbox; retrying');
        return settings.pollIntervalMs;
      })
      .then((wait) => {
        if (again) {
          again = false;
          tick();
        } else schedule(wait);
      });
  }

  function schedule(delay: number) {
    if (!running || timer) return;
    timer = setTimeout(tick, delay);
    timer.unref?.();
  }

  return {
    start() {
      if (running) return;
      running = true;
      schedule(0); // undelivered alerts from before a restart go out first
    },
    /** New alerts were recorded: send them now rather than at the next poll. */
    wake() {
      if (!running) return;
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
        tick();
      } else again = true;
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inFlight;
    },
  };
}

/** One POST of an alert to a webhook; never throws. */
export async function post(webhook: Webhook, payload: AlertPayload): Promise<{ status: number | null; error: string | null }> {
  try {
    const response = await fetch(webhook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'taskwarden', 'idempotency-key': payload.id, ...webhook.headers },
      body: requestBody(webhook, payload),
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
    await response.body?.cancel().catch(() => {});
    return { status: response.status, error: response.ok ? null : `HTTP ${response.status}` };
  } catch (error) {
    // fetch hides the reason (ECONNREFUSED, a timeout...) in its cause.
    const cause = (error as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
    return { status: null, error: cause?.code ?? cause?.errors?.[0]?.code ?? (error as Error).message };
  }
}
