import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envSchema, loadConfig } from '../src/config.js';
import { parseDuration } from '../src/duration.js';

describe('configuration', () => {
  it('has defaults that need no setup', () => {
    expect(loadConfig({})).toEqual({
      port: 4000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      dataDir: './data',
      databasePoolSize: 10,
      redisUrl: undefined,
      monitor: { enabled: true, intervalMs: 15_000, heartbeatTimeoutMs: 2 * 60_000, stallTimeoutMs: 60 * 60_000, action: 'cancel' },
      retention: { taskRetentionMs: null, historyRetentionMs: 30 * 24 * 3600_000 },
      shutdownTimeoutMs: 10_000,
      progressHistoryIntervalMs: 30_000,
      logLevel: 'info',
      logFormat: undefined,
      envTokens: [],
      introspection: true,
      limits: {
        depth: 6,
        cost: 5000,
        aliases: 15,
        directives: 50,
        tokens: 1000,
        bodyBytes: 2 * 1024 * 1024,
        subscriptionsPerConnection: 20,
        connectionsPerToken: 200,
        subscriptionBuffer: 1000,
        connectionsPerAddress: 500,
        anonymousConnectionsPerAddress: 10_000,
        authFailuresPerMinute: 30,
        headersTimeoutMs: 20_000,
        requestTimeoutMs: 60_000,
      },
      browser: { corsOrigins: [], allowedHosts: [] },
      metricsPort: undefined,
      alerts: {
        webhooks: [],
        burstCount: 5,
        burstWindowMs: 600_000,
        sweepFailures: 3,
        pendingAfterMs: undefined,
        maxAttempts: 8,
        retryBaseMs: 2000,
        pollIntervalMs: 5000,
      },
      scheduling: { retryBackoff: { initialSeconds: 30, factor: 2, maxSeconds: 1800 }, kindLimits: {} },
      warnings: [],
    });
  });

  it('reads CORS_ORIGINS and ALLOWED_HOSTS as lists, and refuses what is not an origin or a host name', () => {
    const config = loadConfig({
      CORS_ORIGINS: 'https://ops.example.com, http://localhost:5173/',
      ALLOWED_HOSTS: 'Taskwarden.internal,10.0.0.5:4000,[::1]',
      METRICS_PORT: '9464',
    });
    expect(config.browser).toEqual({
      corsOrigins: ['https://ops.example.com', 'http://localhost:5173'],
      allowedHosts: ['taskwarden.internal', '10.0.0.5:4000', '[::1]'],
    });
    expect(config.metricsPort).toBe(9464);
    for (const bad of ['*', 'ops.example.com', 'https://ops.example.com/path', 'null']) {
      expect(() => loadConfig({ CORS_ORIGINS: bad })).toThrow(/CORS_ORIGINS=.*expected origins/);
    }
    expect(() => loadConfig({ ALLOWED_HOSTS: 'http://x.example' })).toThrow(/ALLOWED_HOSTS=.*expected host names/);
  });

  it('reads webhooks from ALERT_WEBHOOK_URLS and from an ALERT_CONFIG file, with filters and formats', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'tw-alerts-')), 'alerts.json');
    writeFileSync(
      file,
      JSON.stringify({ webhooks: [{ url: 'https://ops.example/hook', rules: ['task.stuck'], kinds: ['backtest'], headers: { 'x-key': 'k' } }] }),
    );
    const config = loadConfig({
      ALERT_WEBHOOK_URLS: 'https://a.example/in, slack=https://hooks.slack.com/services/T/B/X,feishu=https://open.feishu.cn/hook/1',
      ALERT_CONFIG: file,
    });
    expect(config.alerts.webhooks).toEqual([
      { url: 'https://a.example/in', format: 'json' },
      { url: 'https://hooks.slack.com/services/T/B/X', format: 'slack' },
      { url: 'https://open.feishu.cn/hook/1', format: 'feishu' },
      { url: 'https://ops.example/hook', format: 'json', rules: ['task.stuck'], kinds: ['backtest'], headers: { 'x-key': 'k' } },
    ]);
    writeFileSync(file, JSON.stringify({ webhooks: [{ url: 'ftp://nope' }] }));
    expect(() => loadConfig({ ALERT_CONFIG: file })).toThrow(/ALERT_CONFIG=.*webhooks\.0\.url: expected an http\(s\) URL/);
  });

  it('reads API tokens given in the environment, and turns introspection off in production', () => {
    expect(loadConfig({ TASKWARDEN_TOKENS: 'ci-runner:worker:0123456789abcdef0123, ops:admin:s3cret:with:colons-x' }).envTokens).toEqual([
      { name: 'ci-runner', role: 'worker', secret: '0123456789abcdef0123' },
      { name: 'ops', role: 'admin', secret: 's3cret:with:colons-x' },
    ]);
    expect(loadConfig({ NODE_ENV: 'production' }).introspection).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' }).introspection).toBe(true);
  });

  it('reads durations like 30m, 90s, 1h and 1.5h', () => {
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration(' 500ms ')).toBe(500);
    for (const bad of ['', '10', 'abc', '-5m', '0s', 'm', '5 parsecs']) expect(parseDuration(bad), bad).toBeUndefined();
  });

  it('takes every setting from the environment', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://u:p@db/taskwarden',
      DATA_DIR: '/var/lib/taskwarden',
      REDIS_URL: 'redis://cache:6379',
      MONITOR_ENABLED: 'false',
      MONITOR_INTERVAL: '90s',
      HEARTBEAT_TIMEOUT: '45s',
      STALL_TIMEOUT: '2h',
      MONITOR_ACTION: 'retry',
      SHUTDOWN_TIMEOUT: '30s',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
    });
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: 'postgres://u:p@db/taskwarden',
      dataDir: '/var/lib/taskwarden',
      redisUrl: 'redis://cache:6379',
      monitor: { enabled: false, intervalMs: 90_000, heartbeatTimeoutMs: 45_000, stallTimeoutMs: 7_200_000, action: 'retry' },
      shutdownTimeoutMs: 30_000,
      logLevel: 'debug',
      logFormat: 'json',
    });
  });

  it.each([
    ['PORT', 'http', 'PORT="http": expected a port number'],
    ['PORT', '70000', 'PORT="70000": expected a port from 0 to 65535'],
    ['DATABASE_URL', 'mysql://x', 'DATABASE_URL="mysql://x": expected a postgres:// or postgresql:// URL'],
    ['REDIS_URL', 'localhost:6379', 'REDIS_URL="localhost:6379": expected a redis:// or rediss:// URL'],
    ['MONITOR_INTERVAL', 'often', 'MONITOR_INTERVAL="often": expected a duration such as 30m, 90s or 1h'],
    ['STUCK_TIMEOUT', '60', 'STUCK_TIMEOUT="60": expected a duration such as 60m, 90s or 1h'],
    ['STALL_TIMEOUT', '60', 'STALL_TIMEOUT="60": expected a duration such as 60m, 90s or 1h'],
    ['HEARTBEAT_TIMEOUT', 'soon', 'HEARTBEAT_TIMEOUT="soon": expected a duration such as 2m, 90s or 1h'],
    ['MONITOR_ACTION', 'delete', 'MONITOR_ACTION="delete": expected one of cancel, fail, retry, none'],
    ['MONITOR_ENABLED', 'maybe', 'MONITOR_ENABLED="maybe": expected true or false'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL="loud": expected one of fatal, error, warn, info, debug, trace, silent'],
    ['LOG_FORMAT', 'text', 'LOG_FORMAT="text": expected one of json, pretty'],
    ['TASKWARDEN_TOKENS', 'ops:root:short', 'TASKWARDEN_TOKENS="ops:root:short": expected name:role:secret entries'],
    ['MAX_QUERY_DEPTH', '0', 'MAX_QUERY_DEPTH="0": expected a whole number such as 6'],
    ['ALERT_WEBHOOK_URLS', 'hooks.example', 'ALERT_WEBHOOK_URLS="hooks.example": expected http(s) URLs separated by commas'],
    ['ALERT_BURST_WINDOW', 'soon', 'ALERT_BURST_WINDOW="soon": expected a duration such as 10m, 90s or 1h'],
  ])('rejects %s=%s with a message naming the variable', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(message) }));
  });

  it('accepts STUCK_TIMEOUT as the old name of STALL_TIMEOUT, with one warning', () => {
    expect(loadConfig({}).warnings).toEqual([]);
    const old = loadConfig({ STUCK_TIMEOUT: '90m' });
    expect(old.monitor).toMatchObject({ stallTimeoutMs: 90 * 60_000, heartbeatTimeoutMs: 2 * 60_000 });
    expect(old.warnings).toEqual([expect.stringMatching(/^STUCK_TIMEOUT is deprecated: it now sets STALL_TIMEOUT/)]);
    const both = loadConfig({ STUCK_TIMEOUT: '90m', STALL_TIMEOUT: '20m' });
    expect(both.monitor.stallTimeoutMs).toBe(20 * 60_000);
    expect(both.warnings).toEqual([expect.stringMatching(/ignored, since STALL_TIMEOUT is set/)]);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' })).toMatchObject({ port: 4000, databaseUrl: undefined });
  });
});

describe('docs/configuration.md', () => {
  const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  const [serverPart = '', outsidePart = ''] = doc.split('\n## Outside the server\n');
  /** Table rows whose first cell names settings: `NAME` or `A`, `B`, with the second cell (the default). */
  const rows = (text: string) =>
    [...text.matchAll(/^\| (`[A-Z][A-Z0-9_]*`(?:, `[A-Z][A-Z0-9_]*`)*) \| ([^|]*) \|/gm)].map(([, names, fallback]) => ({
      names: [...names!.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]!),
      fallback: fallback!.trim(),
    }));
  const settings = Object.keys(envSchema.shape) as (keyof typeof envSchema.shape)[];

  it('lists every setting of the server once, and nothing the server does not read', () => {
    const documented = rows(serverPart).flatMap((row) => row.names);
    expect([...documented].sort()).toEqual([...settings].sort());
  });

  it("gives each setting's default as the code has it, here and wherever another doc's table states one", () => {
    const docs = readdirSync(new URL('../docs/', import.meta.url)).filter((file) => file.endsWith('.md') && file !== 'configuration.md');
    const elsewhere = docs.flatMap((file) => rows(readFileSync(new URL(`../docs/${file}`, import.meta.url), 'utf8')));
    for (const { names, fallback } of [...rows(serverPart), ...elsewhere.filter((row) => row.names.length === 1 && settings.includes(row.names[0] as never))]) {
      const name = names[0] as keyof typeof envSchema.shape;
      const field = envSchema.shape[name];
      const codeDefault = field.parse(undefined);
      if (fallback === '(unset)') {
        expect([undefined, []], name).toContainEqual(codeDefault);
      } else {
        expect(field.parse(/^`(.*)`$/.exec(fallback)?.[1]), `${name} ${fallback}`).toEqual(codeDefault);
      }
    }
  });

  it('lists every variable the code reads elsewhere (the command line, the demo, the tests)', () => {
    // Set by the demo for its own worker processes, not by people.
    const internal = new Set(['WORKER_ID', 'WORKER_KINDS', 'WORKER_SUBSCRIBE']);
    const sources = execFileSync('git', ['grep', '-hoE', 'process\\.env\\.[A-Z][A-Z0-9_]+', '--', 'src', 'bin', 'scripts', 'test'], { encoding: 'utf8' });
    const read = new Set(
      sources
        .split('\n')
        .filter(Boolean)
        .map((line) => line.replace('process.env.', '')),
    );
    const outside = rows(outsidePart).flatMap((row) => row.names);
    const missing = [...read].filter((name) => !internal.has(name) && !settings.includes(name as never) && !outside.includes(name));
    expect(missing).toEqual([]);
    expect(outside.filter((name) => settings.includes(name as never))).toEqual([]);
  });
});
