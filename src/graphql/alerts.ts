import { alertStatus, type AlertStatus } from '../alerts/status.js';
import type { AlertPayload } from '../alerts/rules.js';
import { bigintId } from '../bigint-id.js';
import { badInput } from '../errors.js';
import type { Alert, AlertDelivery } from '../generated/prisma/client.js';
import { firstArg, idArg, pageSize } from './args.js';
import { builder } from './builder.js';

const AlertStatusEnum = builder.enumType('AlertStatus', {
  description: "An alert's delivery state across its webhooks.",
  values: {
    PENDING: { value: 'PENDING' as const, description: 'Some webhook still has it to come (first try or a retry).' },
    DELIVERED: { value: 'DELIVERED' as const, description: 'Every webhook that wanted it acknowledged it.' },
    FAILED: { value: 'FAILED' as const, description: 'Some webhook could not take it after every attempt; retryAlert sends it again.' },
    NO_WEBHOOK: { value: 'NO_WEBHOOK' as const, description: 'No configured webhook wanted it (it still reached subscribers).' },
  } satisfies Record<AlertStatus, unknown>,
});

const DeliveryRef = builder.objectRef<AlertDelivery>('AlertDelivery').implement({
  fields: (t) => ({
    webhook: t.string({
      description: 'The webhook, shown without the secret part of its URL.',
      resolve: (d, _args, ctx) => ctx.services.alerts.webhooks.find((w) => w.id === d.destination)?.display ?? `(no longer configured: ${d.destination})`,
    }),
    status: t.exposeString('status'),
    attempts: t.exposeInt('attempts'),
    lastStatus: t.exposeInt('lastStatus', { nullable: true, description: 'The HTTP status of the last attempt.' }),
    lastError: t.exposeString('lastError', { nullable: true }),
    nextAttemptAt: t.expose('nextAttemptAt', { type: 'DateTime' }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true }),
  }),
});

const AlertRef = builder.objectRef<Alert & { deliveries: AlertDelivery[] }>('Alert').implement({
  description: 'An alert from the outbox: a stuck task, a failure, a failure burst, a failing monitor, a task waiting too long.',
  fields: (t) => ({
    id: t.id({ resolve: (a) => a.id.toString() }),
    key: t.exposeString('key', { description: 'The idempotency key receivers get; one alert per stuck episode, failure or burst window.' }),
    rule: t.exposeString('rule'),
    severity: t.string({ resolve: (a) => (a.payload as unknown as AlertPayload).severity }),
    summary: t.string({ resolve: (a) => (a.payload as unknown as AlertPayload).summary }),
    taskId: t.exposeID('taskId', { nullable: true }),
    kind: t.exposeString('kind', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    payload: t.expose('payload', { type: 'JSON', description: 'The JSON body webhooks receive.' }),
    status: t.field({ type: AlertStatusEnum, resolve: (a) => alertStatus(a.deliveries) }),
    deliveries: t.field({ type: [DeliveryRef], resolve: (a) => a.deliveries }),
  }),
});

builder.queryField('alerts', (t) =>
  t.field({
    authScopes: { read: true },
    type: [AlertRef],
    description: 'Alerts, newest first, optionally only those in one delivery state.',
    args: { status: t.arg({ type: AlertStatusEnum }), first: t.arg.int(firstArg(50)) },
    resolve: (_root, args, ctx) => ctx.services.alerts.list({ status: args.status, first: pageSize(args.first, 500) }),
  }),
);

builder.mutationField('retryAlert', (t) =>
  t.field({
    authScopes: { operate: true },
    type: AlertRef,
    description: 'Sends an alert again to the webhooks that could not take it, with a fresh round of attempts.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => {
      const text = idArg(args.id);
      const id = bigintId(text);
      if (id === null) throw badInput('id', `"${text.slice(0, 40)}" is not an alert id`);
      return ctx.services.alerts.retry(id);
    },
  }),
);
