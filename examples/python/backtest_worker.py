"""A Python backtest worker for Taskwarden.

Run the server (npm start), then this worker, then submit a backtest:

    python3 examples/python/backtest_worker.py
    python3 -c 'import sys; sys.path.insert(0, "clients/python"); import taskwarden;
    print(taskwarden.Client("http://localhost:4000/graphql").create_task("SMA 10/30 AAPL", params={"symbol": "AAPL", "days": 500}))'

Settings from the environment: TASKWARDEN_URL (default http://localhost:4000/graphql),
TASKWARDEN_TOKEN (a worker token, when the server wants one), TASKWARDEN_KINDS (default backtest).

The backtest function below knows nothing of Taskwarden: the handler wraps it, feeding it its
prices through an iterator that reports progress and stops it when the task is cancelled.
"""

import logging
import math
import os
import random
import sys
import time
from collections import deque
from pathlib import Path

try:
    import taskwarden
except ImportError:  # run from a checkout: use the client next door
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
    import taskwarden


# --- An existing backtest, unchanged: prices in, metrics out. ---------------------------------


def sma_crossover_backtest(prices, fast=10, slow=30, cash=10_000.0):
    """Long when the fast moving average is above the slow one, flat otherwise."""
    fast_window, slow_window = deque(maxlen=fast), deque(maxlen=slow)
    position, equity, peak, max_drawdown, trades, returns, last = 0.0, cash, cash, 0.0, 0, [], None
    for price in prices:
        if last is not None:
            change = position * (price - last)
            returns.append(change / equity if equity else 0.0)
            equity += change
        peak = max(peak, equity)
        max_drawdown = min(max_drawdown, (equity - peak) / peak)
        fast_window.append(price)
        slow_window.append(price)
        if len(slow_window) == slow:
            want_long = sum(fast_window) / fast > sum(slow_window) / slow
            if want_long != (position > 0):
                position = equity / price if want_long else 0.0
                trades += 1
        last = price
    mean = sum(returns) / len(returns) if returns else 0.0
    spread = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns)) if returns else 0.0
    return {
        "final_equity": round(equity, 2),
        "total_return": round(equity / cash - 1, 4),
        "sharpe": round(mean / spread * math.sqrt(252), 3) if spread else None,  # None, not NaN: JSON has no NaN
        "max_drawdown": round(max_drawdown, 4),
        "trades": trades,
    }


def synthetic_prices(symbol, days, seed=None):
    rng = random.Random(seed if seed is not None else symbol)
    price, prices = 100.0, []
    for _ in range(days):
        price *= math.exp(rng.gauss(0.0003, 0.015))
        prices.append(price)
    return prices


# --- The Taskwarden side. ----------------------------------------------------------------------


class Cancelled(Exception):
    """The task was taken from this worker; whatever the handler does next is discarded."""


def reporting(prices, ctx, up_to=90.0, seconds_per_bar=0.0):
    """Yields the prices one by one, reporting progress up to `up_to` percent and stopping on cancellation."""
    total = len(prices)
    for index, price in enumerate(prices):
        if ctx.cancelled.is_set():
            raise Cancelled(ctx.cancel_reason)
        if seconds_per_bar:
            time.sleep(seconds_per_bar)  # stands in for loading each bar from a slow store
        ctx.progress(up_to * index / total, "simulating trades")  # coalesced: cheap to call on every bar
        yield price


def backtest(task, ctx):
    params = task["params"] or {}
    prices = synthetic_prices(params.get("symbol", "AAPL"), int(params.get("days", 500)), params.get("seed"))
    metrics = sma_crossover_backtest(
        reporting(prices, ctx, seconds_per_bar=float(params.get("seconds_per_bar", 0.01))),
        fast=int(params.get("fast", 10)),
        slow=int(params.get("slow", 30)),
    )
    ctx.progress(90, "saving results")  # where the seed's backtests used to hang
    time.sleep(float(params.get("save_seconds", 1.0)))
    return dict(metrics, symbol=params.get("symbol", "AAPL"), days=len(prices))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = taskwarden.Worker(
        os.environ.get("TASKWARDEN_URL", "http://localhost:4000/graphql"),
        os.environ.get("TASKWARDEN_KINDS", "backtest").split(","),
        backtest,
        token=os.environ.get("TASKWARDEN_TOKEN") or None,
    )
    worker.run()  # until SIGTERM or Ctrl-C: then it drains and hands unfinished backtests back
