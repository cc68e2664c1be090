"""A worker in its own process for the signal tests: its handler runs params.seconds (forever without), or until the task is taken from it.

Prints "started <task id>" when a handler starts and "exiting" when run() returns.
Usage: worker_process.py [drain_timeout_seconds]  (TASKWARDEN_URL, TASKWARDEN_TOKEN, TASKWARDEN_KINDS from the environment)
"""

import os
import sys

import taskwarden


def handler(task, ctx):
    print("started", task["id"], flush=True)
    ctx.progress(10, "working")
    seconds = (task["params"] or {}).get("seconds")
    if ctx.cancelled.wait(seconds):  # a computation of that many seconds (forever without), unless taken away
        return {"late": True}
    return {"slept": seconds}


worker = taskwarden.Worker(
    os.environ["TASKWARDEN_URL"],
    os.environ["TASKWARDEN_KINDS"].split(","),
    handler,
    token=os.environ.get("TASKWARDEN_TOKEN") or None,
    heartbeat_interval=0.2,
    poll_interval=0.05,
    max_poll_interval=0.2,
    drain_timeout=float(sys.argv[1]) if len(sys.argv) > 1 else 30.0,
)
worker.run()
print("exiting", flush=True)
