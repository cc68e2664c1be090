import 'dotenv/config';
import { loadConfig } from './config.js';
import { TaskwardenError } from './errors.js';
import { createLogger } from './log.js';
import { startTaskwarden } from './server/taskwarden.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  console.error(`taskwarden: ${(error as Error).message}`);
  process.exit(2);
}

const log = createLogger(config.logLevel);
for (const warning of config.warnings) log.warn(warning);

try {
  const taskwarden = await startTaskwarden({ config, log });
  console.log(`Taskwarden is ready: the dashboard at ${new URL('/', taskwarden.url)}, GraphiQL at ${taskwarden.url}`);
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down');
    taskwarden.stop().then(
      () => {
        log.info('stopped');
        log.flush?.();
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
} catch (error) {
  if (error instanceof TaskwardenError) {
    console.error(`taskwarden: ${error.message}`);
  } else if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    console.error(`taskwarden: port ${config.port} on ${config.host} is in use; set PORT to another port.`);
  } else {
    console.error('taskwarden: failed to start:', error);
  }
  process.exit(1);
}
