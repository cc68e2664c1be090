"""The Worker against a real server: outcomes, heartbeats, cancellation, retries, and claims."""

import threading
import time

import taskwarden

from .support import PATIENCE, STUCK_TIMEOUT, Relay, ServerTest, URL, WORKER, until


def calls_to(client, method):
    """Counts the calls the worker makes to one of its client's methods (they still reach the server)."""
    calls = []
    real = getattr(client, method)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    setattr(client, method, counted)
    return calls


class OutcomeTest(ServerTest):
    def test_completes_a_task_with_what_the_handler_returns(self):
        task = self.create("SMA cross", params={"fast": 10})

        def handler(task, ctx):
            ctx.progress(50, "simulating")
            return {"sharpe": 1.5, "params": task["params"], "attempt": task["attempt"]}

        self.worker(handler, worker_id="py-ok")
        done = self.until_status(task["id"], "COMPLETED")
        self.assertEqual(
            (done["progress"], done["workerId"], done["result"]), (100, "py-ok", {"sharpe": 1.5, "params": {"fast": 10}, "attempt": 1})
        )

    def test_fails_a_task_whose_handler_raises_with_the_message_and_traceback(self):
        task = self.create("broken")

        def position_size(window):
            return 1 / window

        def handler(task, ctx):
            ctx.progress(90, "saving results")
            return position_size(0)

        self.worker(handler)
        failed = self.until_status(task["id"], "FAILED")
        first_line, trace = failed["error"].split("\n", 1)
        self.assertEqual(first_line, "ZeroDivisionError: division by zero")
        self.assertTrue(trace.startswith("Traceback (most recent call last):"), trace)
        self.assertIn("in handler", trace)
        self.assertIn("in position_size", trace)
        self.assertNotIn("taskwarden.py", trace)  # from the handler down: the worker's own frames are noise
        self.assertIn("return 1 / window", trace)
        self.assertEqual(self.events(task["id"])[-1]["reason"], "ZeroDivisionError: division by zero")
        self.assertEqual((failed["progress"], failed["message"]), (90, "saving results"))  # where it failed

    def test_a_result_json_cannot_hold_fails_the_task_saying_why(self):
        task = self.create()
        self.worker(lambda task, ctx: {"sharpe": float("nan")})
        failed = self.until_status(task["id"], "FAILED")
        self.assertTrue(failed["error"].startswith("the result could not be stored:"), failed["error"])
        self.assertIn("JSON has no NaN", failed["error"])

    def test_progress_is_coalesced_and_the_latest_value_arrives(self):
        task = self.create()
        reached = threading.Event()
        loop = {}

        def handler(task, ctx):
            started = time.monotonic()
            for step in range(1, 51):
                ctx.progress(step * 2, "step %d" % step)
                time.sleep(0.01)
            loop["seconds"] = time.monotonic() - started
            reached.wait(PATIENCE)
            return {"steps": 50}

        self.worker(handler, progress_interval=0.5)
        until(lambda: self.task(task["id"])["message"] == "step 50", what="the latest progress")
        reached.set()
        self.until_status(task["id"], "COMPLETED")
        progress = [e["message"] for e in self.events(task["id"], "PROGRESS")]
        self.assertEqual(progress[-1], "step 50")
        # Fifty calls, at most one write per half second while they came, and the latest afterwards.
        self.assertLessEqual(len(progress), int(loop["seconds"] / 0.5) + 2, progress)


class HeartbeatTest(ServerTest):
    def test_heartbeats_keep_a_silent_handler_from_being_no_heartbeat(self):
        task = self.create("silent")
        release = threading.Event()
        self.worker(lambda task, ctx: release.wait(), heartbeat_interval=0.2)
        running = self.until_status(task["id"], "RUNNING")
        # The monitor (action none) records each stuck episode. A silent handler is caught as frozen
        # (NO_PROGRESS) once heartbeats have come for longer than the stuck timeout without progress;
        # without heartbeats it would have been NO_HEARTBEAT first.
        stuck = until(lambda: self.events(task["id"], "STUCK"), timeout=PATIENCE + 3 * STUCK_TIMEOUT, what="the monitor's verdict")
        self.assertEqual([e["reason"] for e in stuck], ["NO_PROGRESS"])
        now = self.task(task["id"])
        self.assertEqual((now["status"], now["progress"]), ("RUNNING", 0))  # heartbeats are not progress
        self.assertGreater(now["lastHeartbeatAt"], running["startedAt"])
        release.set()
        self.until_status(task["id"], "COMPLETED")
        self.assertNotIn("NO_HEARTBEAT", [e["reason"] for e in self.events(task["id"], "STUCK")])

    def test_beats_at_the_rate_the_lease_asks_for(self):
        # No heartbeat_interval: a task with a 1.5 s heartbeat timeout gets a lease that asks for a beat
        # every 0.5 s. At the fallback rate (10 s) the monitor would call it NO_HEARTBEAT within 2 s.
        task = self.create("lease rate", heartbeat_timeout_seconds=1.5)
        release = threading.Event()
        self.worker(lambda task, ctx: release.wait())
        running = self.until_status(task["id"], "RUNNING")
        beats = set()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            beats.add(self.task(task["id"])["lastHeartbeatAt"])
            time.sleep(0.1)
        release.set()
        self.until_status(task["id"], "COMPLETED")
        self.assertNotIn("NO_HEARTBEAT", [e["reason"] for e in self.events(task["id"], "STUCK")])
        # About eight beats in four seconds; the fallback rate would give none after the claim's.
        self.assertGreaterEqual(len(beats - {running["lastHeartbeatAt"]}), 4, sorted(b for b in beats if b))


class CancellationTest(ServerTest):
    HEARTBEAT = 0.5

    def _taken_away_while_running(self, take_away, expected_status):
        task = self.create()
        seen = {}
        started = threading.Event()

        def handler(task, ctx):
            seen["ctx"] = ctx
            started.set()
            ctx.cancelled.wait()
            seen["cancelled_at"] = time.monotonic()
            return {"late": "result"}  # too late: discarded

        worker = self.worker(handler, heartbeat_interval=self.HEARTBEAT)
        completes = calls_to(worker.client, "complete_task")
        self.assertTrue(started.wait(PATIENCE))
        taken_at = time.monotonic()
        take_away(task["id"])
        ctx = seen["ctx"]
        # The next heartbeat is refused with LEASE_MISMATCH: that is how the worker learns, within one heartbeat
        # (plus the time a request takes on a loaded machine).
        self.assertTrue(ctx.cancelled.wait(self.HEARTBEAT + 5), "ctx.cancelled was not set")
        self.assertLess(seen.get("cancelled_at", time.monotonic()) - taken_at, self.HEARTBEAT + 5)
        self.assertTrue(ctx.cancel_reason.startswith("LEASE_MISMATCH"), ctx.cancel_reason)
        until(lambda: worker.running == 0, what="the handler to end")
        final = self.task(task["id"])
        self.assertEqual((final["status"], final["result"]), (expected_status, None))
        self.assertEqual(completes, [])  # nothing was even tried after the lease was gone

    def test_a_stop_sets_cancelled_within_one_heartbeat(self):
        self._taken_away_while_running(lambda id: self.admin.stop(id, reason="no longer needed"), "CANCELLED")

    def test_a_force_complete_sets_cancelled_within_one_heartbeat(self):
        self._taken_away_while_running(lambda id: self.admin.force_complete(id, status="FAILED", reason="presumed dead"), "FAILED")

    def test_a_late_result_is_refused_with_lease_mismatch_and_never_retried(self):
        task = self.create()
        finish = threading.Event()
        seen = {}

        def handler(task, ctx):  # frozen in a long computation: it never looks at ctx.cancelled
            seen["ctx"] = ctx
            finish.wait()
            return {"stale": True}

        worker = self.worker(handler, heartbeat_interval=60)  # no heartbeat will tell it in time
        completes = calls_to(worker.client, "complete_task")
        fails = calls_to(worker.client, "fail_task")
        self.until_status(task["id"], "RUNNING")
        self.admin.force_complete(task["id"], reason="presumed dead")
        finish.set()
        until(lambda: worker.running == 0, what="the worker to give the task up")
        self.assertEqual(len(completes), 1)
        self.assertEqual(fails, [])
        self.assertTrue(seen["ctx"].cancelled.is_set())
        self.assertTrue(seen["ctx"].cancel_reason.startswith("LEASE_MISMATCH"))
        final = self.task(task["id"])
        self.assertEqual((final["status"], final["result"]), ("CANCELLED", None))


class RetryTest(ServerTest):
    def test_the_final_write_is_retried_through_a_network_outage(self):
        relay = Relay(URL)
        task = self.create()
        finish = threading.Event()
        self.workers.append(
            taskwarden.Worker(relay.url, [self.kind], lambda task, ctx: finish.wait() and {"sharpe": 2.0}, token=WORKER, poll_interval=0.05)
        )
        worker = self.workers[-1]
        completes = calls_to(worker.client, "complete_task")
        worker.start()
        self.until_status(task["id"], "RUNNING")
        relay.cut()
        finish.set()
        until(lambda: len(completes) >= 2, what="a retried completeTask")  # the first one failed: nobody listens
        self.assertEqual(self.task(task["id"])["status"], "RUNNING")
        relay.restore()
        done = self.until_status(task["id"], "COMPLETED")
        self.assertEqual(done["result"], {"sharpe": 2.0})
        relay.cut()


class ClaimTest(ServerTest):
    def test_two_workers_never_get_the_same_task(self):
        tasks = [self.create("t%d" % i)["id"] for i in range(16)]
        runs = []
        lock = threading.Lock()

        def handler_for(name):
            def handler(task, ctx):
                with lock:
                    runs.append((task["id"], name))
                time.sleep(0.02)
                return {"by": name}

            return handler

        self.worker(handler_for("a"), worker_id="py-a", concurrency=3)
        self.worker(handler_for("b"), worker_id="py-b", concurrency=3)
        until(lambda: len(self.admin.list(status="COMPLETED", kind=self.kind, first=100)) == len(tasks), what="all tasks completed")
        ids = [id for id, _ in runs]
        self.assertEqual(sorted(ids), sorted(tasks))  # each task ran exactly once
        for id, name in runs:
            task = self.task(id)
            self.assertEqual(task["result"], {"by": name})
            self.assertEqual(len([e for e in task["events"] if e["type"] == "STARTED"]), 1)

    def test_runs_at_most_concurrency_handlers_at_once(self):
        for i in range(5):
            self.create("t%d" % i)
        now, most, lock = [0], [0], threading.Lock()

        def handler(task, ctx):
            with lock:
                now[0] += 1
                most[0] = max(most[0], now[0])
            time.sleep(0.1)
            with lock:
                now[0] -= 1

        self.worker(handler, concurrency=2)
        until(lambda: len(self.admin.list(status="COMPLETED", kind=self.kind)) == 5, what="all tasks completed")
        self.assertLessEqual(most[0], 2)
