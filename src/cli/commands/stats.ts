import { Command } from 'commander';
import { ago, clockTime, duration, examples, label, minutesText, percent, printable, status, withClient } from '../output.js';

export const statsCommand = () =>
  new Command('stats')
    .description("Counts by status, success rate, average duration, stuck count, and the monitor's last sweep")
    .addHelpText('after', examples('taskwarden stats', 'taskwarden stats --json'))
    .action(
      withClient(async ({ client, out }) => {
        const { taskStats: s, monitor: m } = await client.stats();
        out.result({ taskStats: s, monitor: m }, () => {
          const counts = out.table(
            ['status', 'tasks'],
            [
              [status(out.c, 'PENDING'), s.pending],
              [status(out.c, 'RUNNING'), s.running],
              [status(out.c, 'COMPLETED'), s.completed],
              [status(out.c, 'FAILED'), s.failed],
              [status(out.c, 'CANCELLED'), s.cancelled],
              [out.c.bold('total'), s.total],
            ],
          );
          const byKind =
            s.byKind.length > 1
              ? `\n${out.table(
                  ['kind', 'total', 'pending', 'running', 'completed', 'failed', 'cancelled', 'success'],
                  s.byKind.map((k) => [label(k.kind), k.total, k.pending, k.running, k.completed, k.failed, k.cancelled, percent(rate(k.successRate), 1)]),
                )}`
              : '';
          const sweep = m.lastSweepAt
            ? `${clockTime(m.lastSweepAt)} (${ago(m.lastSweepAt)}): scanned ${m.lastSweepScanned}, found ${m.lastSweepFound}, fixed ${m.lastSweepFixed}`
            : 'none yet';
          const facts: [string, string][] = [
            ['Success rate', s.successRate == null ? '- (nothing finished yet)' : `${percent(rate(s.successRate), 1)} of finished tasks completed`],
            ['Average duration', duration(s.averageDurationSeconds)],
            [
              'Stuck now',
              `${s.stuck}${s.stuck ? ` ${out.c.red('(see taskwarden stuck)')}` : ''} under the monitor's clocks: no heartbeat for ${minutesText(m.heartbeatTimeoutSeconds / 60)}, no progress for ${minutesText(m.stallTimeoutMinutes)}`,
            ],
            ['Monitor', m.enabled ? `on: every ${duration(m.intervalSeconds)}, action ${m.action}` : out.c.yellow('off in this server')],
            ['Last sweep', sweep],
            ...(m.lastError ? [['Last error', out.c.red(`${printable(m.lastError)} (${m.consecutiveFailures} failed in a row)`)] as [string, string]] : []),
          ];
          return [counts + byKind, ...facts.map(([label, value]) => `${label.padEnd(17)} ${value}`)].join('\n');
        });
      }),
    );

const rate = (fraction: number | null) => (fraction == null ? null : fraction * 100);
