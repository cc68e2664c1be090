import { Prisma } from '../generated/prisma/client.js';
import type { Db } from '../tasks/model.js';
import type { AlertDraft } from './rules.js';
import { accepts, type Webhook } from './webhooks.js';

export interface RecordedAlert {
  id: bigint;
  key: string;
}

/**
 * Writes alerts into the outbox, with one delivery per webhook that wants
 * each, in the caller's transaction. An alert whose key is already there is
 * skipped (deduplication); only the new ones are returned.
 */
export async function recordAlerts(db: Db, drafts: AlertDraft[], webhooks: Webhook[], at: Date): Promise<RecordedAlert[]> {
  if (drafts.length === 0) return [];
  const rows = await db.$queryRaw<RecordedAlert[]>`
    INSERT INTO "Alert" (key, rule, "taskId", kind, payload, "createdAt")
    VALUES ${Prisma.join(drafts.map((d) => Prisma.sql`(${d.key}, ${d.rule}, ${d.taskId}::uuid, ${d.kind}, ${JSON.stringify(d.payload)}::jsonb, ${at})`))}
    ON CONFLICT (key) DO NOTHING
    RETURNING id, key`;
  const byKey = new Map(drafts.map((d) => [d.key, d]));
  const deliveries = rows.flatMap((row) =>
    webhooks.filter((webhook) => accepts(webhook, byKey.get(row.key)!)).map((webhook) => Prisma.sql`(${row.id}, ${webhook.id}, now())`),
  );
  if (deliveries.length > 0) {
    // Due at once, by the database's clock: the delivery loop schedules with it too.
    await db.$executeRaw`INSERT INTO "AlertDelivery" ("alertId", destination, "nextAttemptAt") VALUES ${Prisma.join(deliveries)}`;
  }
  return rows;
}
