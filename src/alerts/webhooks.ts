import { createHash } from 'node:crypto';
import type { WebhookConfig } from './settings.js';
import type { AlertDraft, AlertPayload } from './rules.js';

export interface Webhook extends WebhookConfig {
  /** Stable name of the destination in the outbox: a digest, since webhook URLs often embed a secret. */
  id: string;
  /** Safe to show: scheme, host and the start of the path. */
  display: string;
}

export function webhooksFrom(configs: WebhookConfig[]): Webhook[] {
  return configs.map((config) => {
    const url = new URL(config.url);
    return {
      ...config,
      id: createHash('sha256').update(config.url).digest('hex').slice(0, 16),
      display: `${url.protocol}//${url.host}${url.pathname.length > 12 ? `${url.pathname.slice(0, 12)}…` : url.pathname}`,
    };
  });
}

/** Whether this webhook wants this alert (its optional rule and kind filters). */
export function accepts(webhook: Webhook, alert: Pick<AlertDraft, 'rule' | 'kind'>): boolean {
  if (webhook.rules && !webhook.rules.includes(alert.rule)) return false;
  if (webhook.kinds && (!alert.kind || !webhook.kinds.includes(alert.kind))) return false;
  return true;
}

/** The request body: the payload itself, or a chat message Slack or Feishu incoming webhooks accept. */
export function requestBody(webhook: Webhook, payload: AlertPayload): string {
  const text = `[Taskwarden] ${payload.severity === 'critical' ? '🔴' : '🟠'} ${payload.summary} (${payload.rule}, ${payload.id})`;
  switch (webhook.format) {
    case 'slack':
      return JSON.stringify({ text });
    case 'feishu':
      return JSON.stringify({ msg_type: 'text', content: { text } });
    case 'json':
      return JSON.stringify(payload);
  }
}
