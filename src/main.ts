import 'dotenv/config';
import ms from 'ms';
import { loadConfig, type Config } from './config.js';
import { TaskwardenError } from './errors.js';
import { createLogger, isPretty, type Logger } from './log.js';
import { startTaskwarden, type Taskwarden } from './server/taskwarden.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  console.error(`taskwarden: ${(error as Error).message}`);
  process.exit(2);
}

const log = createLogger(config.logLevel, { format: config.logFormat });
for (const warning of config.warnings) log.warn(warning);

try {
  const taskwarden = await startTaskwarden({ config, log });
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
  // Last: whoever waits for this line may signal the process at once, and must find the handlers in place.
  announce(taskwarden, config, log);
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

/** The first lines a person reads: where everything is, and whether a token is needed. */
function announce(taskwarden: Taskwarden, config: Config, log: Logger) {
  const { monitor } = config;
  const ready = {
    dashboard: new URL('/', taskwarden.url).href,
    api: taskwarden.url,
    graphiql: config.introspection ? taskwarden.url : undefined,
    data: taskwarden.db.provider === 'pglite' ? `embedded database in ${taskwarden.db.location}` : `PostgreSQL at ${taskwarden.db.location}`,
    tokensRequired: taskwarden.tokensRequired,
    monitor: monitor.enabled
      ? `every ${ms(monitor.intervalMs)}, no heartbeat for ${ms(monitor.heartbeatTimeoutMs)} or no progress for ${ms(monitor.stallTimeoutMs)} is stuck, action ${monitor.action}`
      : 'off',
  };
  const tokens = ready.tokensRequired
    ? 'required (Authorization: Bearer <token>; the dashboard takes one in Settings)'
    : 'NOT required: no API token exists, so every request on this machine may do anything (create one: npx taskwarden token create --role admin --name <you>)';
  const headline = `Taskwarden is ready: the dashboard at ${ready.dashboard}, ${ready.graphiql ? 'GraphiQL and the API' : 'the API'} at ${ready.api}`;
  if (isPretty({ format: config.logFormat })) {
    const lines = [headline, `  data     ${ready.data}`, `  tokens   ${tokens}`, `  monitor  ${ready.monitor}`];
    process.stdout.write(`${lines.join('\n')}\n`);
  } else {
    log.info(ready, headline);
    if (!ready.tokensRequired) log.warn(`API tokens are ${tokens}`);
  }
}
