// What alerting can be told: its rules, webhook formats and settings. config.ts reads them from the environment.

export const alertRules = ['task.stuck', 'task.failed', 'failures.burst', 'monitor.failing', 'task.pending', 'task.dependency_failed'] as const;
export type AlertRule = (typeof alertRules)[number];

export const webhookFormats = ['json', 'slack', 'feishu'] as const;
export type WebhookFormat = (typeof webhookFormats)[number];

/** A webhook alerts go to: optionally only some rules or task kinds; a plain JSON body or a Slack/Feishu text message. */
export interface WebhookConfig {
  url: string;
  format: WebhookFormat;
  rules?: AlertRule[];
  kinds?: string[];
  headers?: Record<string, string>;
}

export interface AlertSettings {
  webhooks: WebhookConfig[];
  /** This many failures of one kind within the window make a burst alert (once per window). */
  burstCount: number;
  burstWindowMs: number;
  /** Sweeps failing in a row before the monitor itself is alerted on. */
  sweepFailures: number;
  /** Alert on tasks waiting in PENDING longer than this; off when unset. */
  pendingAfterMs?: number;
  /** Delivery attempts per webhook before an alert is marked FAILED (it can be retried). */
  maxAttempts: number;
  /** First retry delay; doubles each attempt (with jitter), up to 5 minutes. */
  retryBaseMs: number;
  /** How often the delivery loop looks for due deliveries when not woken by a new alert. */
  pollIntervalMs: number;
}
