import type { Logger } from 'pino';
import { createAccess, type Access } from './auth/access.js';
import { createTokenService, type EnvToken, type TokenService } from './auth/tokens.js';
import type { Clock } from './clock.js';
import type { MonitorSettings } from './config.js';
import type { EventBus } from './events.js';
import type { PrismaClient } from './generated/prisma/client.js';
import { createMonitor, type Monitor } from './monitor/monitor.js';
import { createLiveService, type LiveService } from './tasks/live.js';
import { createTaskService, type TaskService } from './tasks/service.js';
import { createStatsService, type StatsService } from './tasks/stats.js';

/** Everything the API works with; none of it knows about GraphQL. */
export interface Services {
  prisma: PrismaClient;
  clock: Clock;
  bus: EventBus;
  tasks: TaskService;
  stats: StatsService;
  live: LiveService;
  monitor: Monitor;
  tokens: TokenService;
  access: Access;
}

export function createServices(deps: {
  prisma: PrismaClient;
  clock: Clock;
  bus: EventBus;
  monitor: MonitorSettings;
  log: Logger;
  envTokens?: EnvToken[];
}): Services {
  const { prisma, clock, bus, log } = deps;
  const tasks = createTaskService({ prisma, clock, bus });
  const tokens = createTokenService({ prisma, clock, bus, envTokens: deps.envTokens });
  return {
    prisma,
    clock,
    bus,
    tasks,
    stats: createStatsService({ prisma, clock, stuckTimeoutMs: deps.monitor.stuckTimeoutMs }),
    live: createLiveService({ bus, tasks }),
    monitor: createMonitor({ prisma, tasks, clock, bus, settings: deps.monitor, log: log.child({ component: 'monitor' }) }),
    tokens,
    access: createAccess({ tokens, log }),
  };
}
