import type { DeliveryStatus, Prisma } from '../generated/prisma/client.js';

/** An alert's overall state across its webhooks. */
export type AlertStatus = 'PENDING' | 'DELIVERED' | 'FAILED' | 'NO_WEBHOOK';

/**
 * The rule, once: an alert takes the first of these statuses that one of its
 * deliveries has (null: it has no delivery at all). `alertStatus` and the
 * `alerts(status:)` filter both read it, so a listed alert always shows the
 * status it was listed under.
 */
const precedence: readonly { status: AlertStatus; delivery: DeliveryStatus | null }[] = [
  { status: 'NO_WEBHOOK', delivery: null },
  { status: 'FAILED', delivery: 'FAILED' },
  { status: 'PENDING', delivery: 'PENDING' },
  { status: 'DELIVERED', delivery: 'DELIVERED' },
];

/** An alert's status, from its deliveries. */
export function alertStatus(deliveries: readonly { status: DeliveryStatus }[]): AlertStatus {
  const has = (delivery: DeliveryStatus | null) => (delivery === null ? deliveries.length === 0 : deliveries.some((d) => d.status === delivery));
  // Every delivery has one of the statuses, so some entry always matches.
  return precedence.find((p) => has(p.delivery))!.status;
}

/** The alerts whose status is `status`, as a filter: its own entry matches, none before it does. */
export function alertStatusWhere(status: AlertStatus): Prisma.AlertWhereInput {
  const at = precedence.findIndex((p) => p.status === status);
  const has = (delivery: DeliveryStatus | null): Prisma.AlertWhereInput => ({ deliveries: delivery === null ? { none: {} } : { some: { status: delivery } } });
  const lacks = (delivery: DeliveryStatus | null): Prisma.AlertWhereInput => ({
    deliveries: delivery === null ? { some: {} } : { none: { status: delivery } },
  });
  return { AND: [...precedence.slice(0, at).map((p) => lacks(p.delivery)), has(precedence[at]!.delivery)] };
}
