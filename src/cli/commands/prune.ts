import { Command } from 'commander';
import ms from 'ms';
import { createOutput, examples, globalOptions } from '../output.js';

interface PruneOptions {
  dryRun?: boolean;
  databaseUrl?: string;
}

const setting = (value: number | null) => (value === null ? 'off' : ms(value, { long: true }));

/**
 * Applies TASK_RETENTION and HISTORY_RETENTION now, on the server's database (the monitor does the same
 * a few batches at a time). Direct rather than through the API: it is upkeep, like `db:migrate`.
 */
export const pruneCommand = () =>
  new Command('prune')
    .description("Delete what the retention settings (TASK_RETENTION, HISTORY_RETENTION) say is too old, in small batches, on the server's database")
    .option('--dry-run', 'count what would be deleted, delete nothing')
    .option('--database-url <url>', 'this PostgreSQL database (default: DATABASE_URL, else the PGlite folder DATA_DIR, from the environment or .env)')
    .addHelpText(
      'after',
      examples('taskwarden prune --dry-run', 'TASK_RETENTION=180d taskwarden prune', 'taskwarden prune --database-url postgres://tw@db/taskwarden --json'),
    )
    .action(async (options: PruneOptions, command: Command) => {
      const out = createOutput(globalOptions(command));
      // Loaded only here: the database path brings Prisma and PGlite along.
      const [{ openServerDatabase }, { prune }, { foldCounts }] = await Promise.all([
        import('../direct-database.js'),
        import('../../monitor/retention.js'),
        import('../../tasks/sql/counts.js'),
      ]);
      const { db, config } = await openServerDatabase(options.databaseUrl);
      try {
        const { retention } = config;
        const report = await prune(db.prisma, retention, new Date(), { dryRun: options.dryRun });
        if (!options.dryRun) await foldCounts(db.prisma);
        out.result(
          { database: db.location, taskRetention: setting(retention.taskRetentionMs), historyRetention: setting(retention.historyRetentionMs), ...report },
          () =>
            [
              `Database ${db.location}: TASK_RETENTION ${setting(retention.taskRetentionMs)}, HISTORY_RETENTION ${setting(retention.historyRetentionMs)}.`,
              `${options.dryRun ? 'Would delete' : 'Deleted'} ${report.tasks} finished task(s) and ${report.events} history entr${report.events === 1 ? 'y' : 'ies'}.`,
            ].join('\n'),
        );
      } finally {
        await db.close();
      }
    });
