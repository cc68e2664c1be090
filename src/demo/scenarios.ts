/**
 * The simulator's story: fake backtests, each with a fate the simulator
 * injects, and what Taskwarden must make of it.
 */
export type Scenario = 'ok' | 'error' | 'freeze' | 'crash' | 'zombie';

export interface Expectation {
  status: 'COMPLETED' | 'FAILED' | 'CANCELLED';
  /** Who must have ended it: the worker itself, or the monitor with this stuck reason. */
  by: 'worker' | 'NO_PROGRESS' | 'NO_HEARTBEAT';
  describe: string;
}

export const expectations: Record<Scenario, Expectation> = {
  ok: { status: 'COMPLETED', by: 'worker', describe: 'runs to the end' },
  error: { status: 'FAILED', by: 'worker', describe: 'throws while simulating' },
  freeze: { status: 'CANCELLED', by: 'NO_PROGRESS', describe: 'freezes at 90% "saving results", still heartbeating' },
  crash: { status: 'CANCELLED', by: 'NO_HEARTBEAT', describe: 'its worker is killed with SIGKILL' },
  zombie: { status: 'CANCELLED', by: 'NO_HEARTBEAT', describe: 'its worker is paused, then resumes as a zombie' },
};

const strategies = ['SMA cross', 'RSI mean-reversion', 'Bollinger breakout', 'Momentum 12-1', 'Pairs (cointegration)', 'MACD trend'];
const symbols = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'SPY', 'BTC-USD', '600519.SS', '0700.HK'];
const ranges: [string, string][] = [
  ['2015-01-01', '2019-12-31'],
  ['2018-01-01', '2022-12-31'],
  ['2020-03-01', '2024-06-30'],
];

export interface DemoTask {
  name: string;
  scenario: Scenario;
  params: { strategy: string; symbol: string; from: string; to: string; scenario: Scenario; seconds: number };
}

/** A batch of fake backtests: mostly fine, a few errors, one or two of each stuck kind, exactly one zombie. */
export function makeBatch(size: number): DemoTask[] {
  const fates: Scenario[] = ['zombie', 'freeze', 'crash', 'error'];
  if (size >= 12) fates.push('freeze', 'crash', 'error');
  while (fates.length < size) fates.push('ok');
  return fates.slice(0, size).map((scenario, i) => {
    const strategy = strategies[i % strategies.length]!;
    const symbol = symbols[(i * 5) % symbols.length]!;
    const [from, to] = ranges[i % ranges.length]!;
    return {
      name: `${strategy} ${symbol} ${from.slice(0, 4)}-${to.slice(0, 4)}`,
      scenario,
      params: { strategy, symbol, from, to, scenario, seconds: 4 + (i % 4) },
    };
  });
}

/**
 * A walk-forward study as a dependency chain: each step may start only once
 * the one before it COMPLETED (Taskwarden holds it back until then).
 */
export function makeChain(): DemoTask[] {
  return ['in-sample fit', 'out-of-sample test', 'report'].map((step, i) => ({
    name: `Walk-forward SPY: ${step}`,
    scenario: 'ok' as const,
    params: { strategy: 'Walk-forward', symbol: 'SPY', from: '2010-01-01', to: '2024-12-31', scenario: 'ok' as const, seconds: 3 + i },
  }));
}

/** A short research run submitted mid-sweep with a high priority: it must be claimed before every task already waiting. */
export function makeUrgent(): DemoTask {
  return {
    name: 'Research: SMA 5/20 AAPL (priority 10)',
    scenario: 'ok',
    params: { strategy: 'SMA cross', symbol: 'AAPL', from: '2023-01-01', to: '2024-12-31', scenario: 'ok', seconds: 3 },
  };
}
