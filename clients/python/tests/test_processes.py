"""Workers as their own processes: killed with kill -9, stopped with SIGTERM, and the example run as it ships."""

import signal

from .support import PATIENCE, REPO, STUCK_TIMEOUT, ServerTest, spawn_worker_process, until


class ProcessTest(ServerTest):
    def setUp(self):
        super().setUp()
        self.processes = []

    def tearDown(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
        super().tearDown()

    def spawn(self, *args, **options):
        process = spawn_worker_process(self.kind, *args, **options)
        self.processes.append(process)
        return process

    def read_until(self, process, prefix):
        """Reads the worker's output up to a line that starts with prefix (its logs go to the same pipe)."""
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith(prefix):
                return line.split()
        self.fail("the worker ended before printing %r:\n%s" % (prefix, "".join(seen)))

    def test_a_worker_killed_with_kill_9_is_caught_by_the_monitor(self):
        task = self.create("SMA cross AAPL", params={"symbol": "AAPL", "days": 100_000, "seconds_per_bar": 0.01})
        example = REPO / "examples" / "python" / "backtest_worker.py"
        process = self.spawn(script=example)
        self.until_status(task["id"], "RUNNING")
        until(lambda: self.task(task["id"])["progress"] > 0, what="the first progress report")
        before = {e["id"] for e in self.events(task["id"])}
        process.send_signal(signal.SIGKILL)
        self.assertEqual(process.wait(PATIENCE), -signal.SIGKILL)
        # Nothing handed it back: only the monitor can find it, once its silence passes the stuck timeout.
        caught = until(
            lambda: [e for e in self.events(task["id"], "STUCK") if e["id"] not in before and e["actor"] == "monitor"],
            timeout=PATIENCE + 3 * STUCK_TIMEOUT,
            what="the monitor to catch the task",
        )
        self.assertEqual(caught[0]["reason"], "NO_HEARTBEAT")
        self.assertEqual(self.task(task["id"])["stuckReason"], "NO_HEARTBEAT")

    def test_sigterm_hands_an_unfinished_task_back_as_pending(self):
        task = self.create()
        process = self.spawn("0.5")  # drain for half a second: this handler would never finish on its own
        _, id = self.read_until(process, "started")
        self.assertEqual(id, task["id"])
        process.send_signal(signal.SIGTERM)
        self.read_until(process, "exiting")
        self.assertEqual(process.wait(PATIENCE), 0)
        back = self.task(task["id"])
        self.assertEqual(back["status"], "PENDING")
        last = back["events"][-1]
        self.assertEqual((last["type"], last["reason"]), ("REQUEUED", "worker stopped before the task finished"))
        self.assertIn("-%d-" % process.pid, last["actor"])  # the worker's default id: host-pid-random

    def test_sigterm_waits_for_a_handler_that_finishes_in_time(self):
        task = self.create(params={"seconds": 1})
        process = self.spawn("30")
        self.read_until(process, "started")
        process.send_signal(signal.SIGTERM)
        self.read_until(process, "exiting")
        self.assertEqual(process.wait(PATIENCE), 0)
        done = self.task(task["id"])
        self.assertEqual((done["status"], done["result"]), ("COMPLETED", {"slept": 1}))

    def test_the_example_runs_a_backtest_as_shipped(self):
        task = self.create("SMA 10/30 MSFT", params={"symbol": "MSFT", "days": 300, "seconds_per_bar": 0.005, "save_seconds": 0.5})
        example = REPO / "examples" / "python" / "backtest_worker.py"
        process = self.spawn(script=example, env={"PYTHONPATH": ""})  # it finds the client in the checkout by itself
        done = self.until_status(task["id"], "COMPLETED", "FAILED")
        self.assertEqual(done["status"], "COMPLETED", done["error"])
        self.assertEqual(set(done["result"]), {"final_equity", "total_return", "sharpe", "max_drawdown", "trades", "symbol", "days"})
        self.assertEqual((done["result"]["symbol"], done["result"]["days"]), ("MSFT", 300))
        reports = {e["message"] for e in self.events(task["id"], "PROGRESS")}
        self.assertTrue(reports and reports <= {"simulating trades", "saving results"}, reports)
        process.send_signal(signal.SIGINT)
        self.assertEqual(process.wait(PATIENCE), 0)
