"""The Client: the calls the seed's scripts made, submitting work, and errors with the server's codes."""

import ast
import unittest

import taskwarden

from .support import ADMIN, CLIENT_DIR, URL, VIEWER, WORKER, Relay, ServerTest


class ClientTest(ServerTest):
    def test_submits_lists_and_reads_tasks_as_plain_dicts(self):
        created = self.create("SMA 10/30 AAPL", params={"symbol": "AAPL", "fast": 10}, max_attempts=2, timeout_minutes=90)
        self.assertEqual(
            {k: created[k] for k in ("name", "kind", "params", "status", "maxAttempts", "timeoutMinutes")},
            {"name": "SMA 10/30 AAPL", "kind": self.kind, "params": {"symbol": "AAPL", "fast": 10}, "status": "PENDING", "maxAttempts": 2, "timeoutMinutes": 90},
        )
        self.create("second")
        listed = self.admin.list(kind=self.kind)
        self.assertEqual([t["name"] for t in listed], ["second", "SMA 10/30 AAPL"])  # newest first
        self.assertEqual(len(self.admin.list(status="PENDING", kind=self.kind, first=1)), 1)
        self.assertEqual(self.admin.list(status=["RUNNING", "COMPLETED"], kind=self.kind), [])
        self.assertEqual([e["type"] for e in self.admin.get(created["id"])["events"]], ["CREATED"])
        self.assertIsNone(self.admin.get("00000000-0000-4000-8000-000000000000"))

    def test_stops_force_completes_deletes_and_cleans_up(self):
        stopped = self.admin.stop(self.create()["id"], reason="no longer needed")
        self.assertEqual(stopped["status"], "CANCELLED")
        self.create()
        running = self.admin.claim_task("py-operator-test", [self.kind])["task"]
        forced = self.admin.force_complete(running["id"], status="FAILED", reason="host lost")
        self.assertEqual((forced["status"], forced["error"]), ("FAILED", "host lost"))
        self.assertEqual(self.admin.delete(stopped["id"]), stopped["id"])
        self.assertIsNone(self.admin.get(stopped["id"]))

        report = self.admin.cleanup_stuck(timeout_minutes=30)
        self.assertEqual((report["autoFix"], report["action"], report["timeoutMinutes"]), (False, "CANCEL", 30))
        self.assertIsInstance(self.admin.stuck(timeout_minutes=30), list)

    def test_stats(self):
        self.create()
        stats = self.admin.stats()
        self.assertGreaterEqual(stats["pending"], 1)
        self.assertIn(self.kind, [k["kind"] for k in stats["byKind"]])
        self.assertTrue(stats["monitor"]["enabled"])

    def test_errors_carry_the_servers_code(self):
        task = self.create()
        with self.assertRaises(taskwarden.TaskwardenError) as refused:
            self.admin.delete(task["id"])
        self.assertEqual(refused.exception.code, "TASK_NOT_TERMINAL")
        with self.assertRaises(taskwarden.TaskwardenError) as bad:
            self.admin.create_task("")
        self.assertEqual(bad.exception.code, "BAD_USER_INPUT")
        with self.assertRaises(taskwarden.TaskwardenError) as missing:
            self.admin.stop("00000000-0000-4000-8000-000000000000")
        self.assertEqual(missing.exception.code, "NOT_FOUND")

    def test_a_stale_lease_is_refused_with_lease_mismatch(self):
        task = self.create()
        lease = self.admin.claim_task("py-lease-test", [self.kind])
        self.admin.stop(task["id"])
        with self.assertRaises(taskwarden.TaskwardenError) as refused:
            self.admin.complete_task(task["id"], lease["leaseToken"], {"late": True})
        self.assertEqual(refused.exception.code, "LEASE_MISMATCH")
        self.assertIsNone(self.task(task["id"])["result"])

    def test_values_json_cannot_hold_are_refused_before_sending(self):
        for params in ({"sharpe": float("nan")}, {"when": object()}):
            with self.assertRaises(taskwarden.TaskwardenError) as refused:
                self.create(params=params)
            self.assertEqual(refused.exception.code, "BAD_USER_INPUT")
        self.assertEqual(self.admin.list(kind=self.kind), [])

    def test_an_unreachable_server_is_a_network_error(self):
        relay = Relay(URL)
        relay.cut()
        with self.assertRaises(taskwarden.TaskwardenError) as unreachable:
            taskwarden.Client(relay.url, ADMIN, timeout=5).list()
        self.assertEqual(unreachable.exception.code, "NETWORK_ERROR")
        self.assertTrue(unreachable.exception.network_error)


class TokenTest(ServerTest):
    def test_a_worker_token_submits_and_claims(self):
        client = taskwarden.Client(URL, WORKER)
        task = client.create_task("from a pipeline", kind=self.kind)
        lease = client.claim_task("py-token-worker", [self.kind])
        self.assertEqual(lease["task"]["id"], task["id"])
        done = client.complete_task(task["id"], lease["leaseToken"], {"ok": True})
        self.assertEqual((done["status"], done["result"]), ("COMPLETED", {"ok": True}))
        with self.assertRaises(taskwarden.TaskwardenError) as refused:
            client.stop(self.create()["id"])  # operating is not a worker's job
        self.assertEqual(refused.exception.code, "FORBIDDEN")

    def test_a_viewer_token_reads_but_is_refused_work_with_the_servers_code(self):
        viewer = taskwarden.Client(URL, VIEWER)
        task = self.create()
        self.assertEqual(viewer.get(task["id"])["id"], task["id"])
        for call in (lambda: viewer.create_task("not allowed", kind=self.kind), lambda: viewer.claim_task("py-viewer", [self.kind])):
            with self.assertRaises(taskwarden.TaskwardenError) as refused:
                call()
            self.assertEqual(refused.exception.code, "FORBIDDEN")
        worker = taskwarden.Worker(URL, [self.kind], lambda task, ctx: None, token=VIEWER, handle_signals=False)
        with self.assertRaises(taskwarden.TaskwardenError) as refused:
            worker.run()  # a worker that cannot claim stops at once, rather than poll forever
        self.assertEqual(refused.exception.code, "FORBIDDEN")
        self.assertEqual(self.task(task["id"])["status"], "PENDING")

    def test_no_token_and_a_wrong_token_are_unauthenticated(self):
        for token in (None, "not-a-token-at-all-0123456789"):
            with self.assertRaises(taskwarden.TaskwardenError) as refused:
                taskwarden.Client(URL, token).list()
            self.assertEqual(refused.exception.code, "UNAUTHENTICATED")


class CompatibilityTest(unittest.TestCase):
    def test_the_module_is_python_3_9_syntax(self):
        source = (CLIENT_DIR / "taskwarden.py").read_text()
        ast.parse(source, feature_version=(3, 9))

    def test_the_module_imports_only_the_standard_library(self):
        tree = ast.parse((CLIENT_DIR / "taskwarden.py").read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        # Spelled out rather than sys.stdlib_module_names, which Python 3.9 lacks: adding an import means looking here.
        standard = {"__future__", "http", "json", "logging", "os", "random", "secrets", "signal", "socket", "threading", "time", "traceback", "typing", "urllib"}
        self.assertEqual(sorted(imported - standard), [])
