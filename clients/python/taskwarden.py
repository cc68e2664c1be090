"""Taskwarden for Python: a client and a worker, standard library only (Python >= 3.9).

Put this directory on PYTHONPATH, or copy this one file next to your code::

    from taskwarden import Worker

    def backtest(task, ctx):
        ...
        ctx.progress(50, "simulating trades")
        return {"sharpe": 1.4}

    Worker("http://localhost:4000/graphql", ["backtest"], backtest).run()

The worker does the parts that leave tasks stuck when done by hand: it heartbeats
while the handler runs, writes the outcome whatever the handler does (retried
through network errors, always with the lease), sets ``ctx.cancelled`` when the
task is taken away, and hands unfinished tasks back on SIGTERM or SIGINT.
A LEASE_MISMATCH is never retried: the task is not this worker's any more.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
import traceback
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

__all__ = ["Client", "TaskContext", "TaskwardenError", "Worker"]
__version__ = "0.1.0"

log = logging.getLogger("taskwarden")

# The same fields as the TypeScript SDK's TaskFields fragment (src/client/operations.ts).
_TASK_FIELDS = """
fragment TaskFields on Task {
  id name kind params status progress message attempt maxAttempts workerId timeoutMinutes
  error result createdAt startedAt lastHeartbeatAt lastProgressAt completedAt durationSeconds
  isStuck stuckReason stuckSince stuckForSeconds
}
"""
_EVENT_FIELDS = "id taskId kind type fromStatus toStatus progress message actor reason attempt at"


def _operation(text: str) -> str:
    return text + _TASK_FIELDS if "...TaskFields" in text else text


_CREATE = _operation("mutation CreateTask($input: CreateTaskInput!) { createTask(input: $input) { ...TaskFields } }")
_GET = _operation(
    "query GetTask($id: ID!, $events: Int!) { task(id: $id) { ...TaskFields events(first: $events) { %s } } }" % _EVENT_FIELDS
)
_LIST = _operation(
    "query ListTasks($status: [TaskStatus!], $kind: String, $first: Int) "
    "{ tasks(status: $status, kind: $kind, first: $first) { edges { node { ...TaskFields } } } }"
)
_STUCK = _operation("query StuckTasks($timeoutMinutes: Float!) { stuckTasks(timeoutMinutes: $timeoutMinutes) { ...TaskFields } }")
_STATS = _operation(
    "query TaskStats { taskStats { since total pending running completed failed cancelled stuck successRate "
    "averageDurationSeconds oldestRunning { ...TaskFields } byKind { kind total pending running completed failed cancelled successRate } } "
    "monitor { enabled running intervalSeconds timeoutMinutes action lastSweepAt nextSweepAt lastSweepScanned lastSweepFound "
    "lastSweepFixed lastSweepDurationMs consecutiveFailures lastError } }"
)
_STOP = _operation("mutation StopTask($id: ID!, $reason: String) { stopTask(id: $id, reason: $reason) { ...TaskFields } }")
_FORCE = _operation(
    "mutation ForceComplete($id: ID!, $status: TaskStatus!, $reason: String) "
    "{ forceComplete(id: $id, status: $status, reason: $reason) { ...TaskFields } }"
)
_DELETE = "mutation DeleteTask($id: ID!) { deleteTask(id: $id) }"
_CLEANUP = _operation(
    "mutation CleanupStuck($timeoutMinutes: Float!, $autoFix: Boolean!, $action: StuckAction!) "
    "{ cleanupStuck(timeoutMinutes: $timeoutMinutes, autoFix: $autoFix, action: $action) "
    "{ autoFix action timeoutMinutes found { ...TaskFields } fixed { ...TaskFields } } }"
)
_CLAIM = (
    "mutation ClaimTask($workerId: String!, $kinds: [String!]) "
    "{ claimTask(workerId: $workerId, kinds: $kinds) { leaseToken %s task { ...TaskFields } } }"
)
_REPORT = (
    "mutation ReportProgress($id: ID!, $leaseToken: String!, $progress: Float, $message: String) "
    "{ reportProgress(id: $id, leaseToken: $leaseToken, progress: $progress, message: $message) { id status progress message lastHeartbeatAt } }"
)
_COMPLETE = _operation(
    "mutation CompleteTask($id: ID!, $leaseToken: String!, $result: JSON) "
    "{ completeTask(id: $id, leaseToken: $leaseToken, result: $result) { ...TaskFields } }"
)
_FAIL = _operation(
    "mutation FailTask($id: ID!, $leaseToken: String!, $error: String!) "
    "{ failTask(id: $id, leaseToken: $leaseToken, error: $error) { ...TaskFields } }"
)
_RELEASE = (
    "mutation ReleaseTask($id: ID!, $leaseToken: String!, $reason: String) "
    "{ releaseTask(id: $id, leaseToken: $leaseToken, reason: $reason) { id status } }"
)

# The server's length limits (src/tasks/validate.ts), counted in UTF-16 units as JavaScript does.
_MAX_ERROR = 10_000
_MAX_TEXT = 1_000


class TaskwardenError(Exception):
    """A request that did not succeed.

    ``code`` is the server's ``extensions.code`` (NOT_FOUND, LEASE_MISMATCH, FORBIDDEN, ...)
    or, when no answer came, NETWORK_ERROR (unreachable, timed out) or HTTP_ERROR
    (an answer that was not GraphQL). Values that cannot be sent as JSON are
    refused before sending, as BAD_USER_INPUT.
    """

    def __init__(self, code: str, message: str, details: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def network_error(self) -> bool:
        """True when the server may not have seen the request: retrying a lease-fenced write is safe."""
        return self.code == "NETWORK_ERROR"

    def __str__(self) -> str:
        return "%s: %s" % (self.code, self.message)


class Client:
    """Queries and mutations over HTTP; returns plain dicts and lists, raises TaskwardenError."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 30.0):
        self.url = url
        self.token = token
        self.timeout = timeout
        # None until the server has said whether TaskLease has heartbeatIntervalSeconds.
        self._lease_rate_field: Optional[bool] = None

    def request(self, query: str, variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Sends one GraphQL operation and returns its data."""
        try:
            body = json.dumps({"query": query, "variables": variables or {}}, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as error:
            hint = " (JSON has no NaN or Infinity)" if "float" in str(error) else ""
            raise TaskwardenError("BAD_USER_INPUT", "cannot be sent as JSON: %s%s" % (error, hint)) from None
        headers = {"content-type": "application/json", "accept": "application/graphql-response+json, application/json"}
        if self.token:
            headers["authorization"] = "Bearer " + self.token
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    status, raw = response.status, response.read()
            except urllib.error.HTTPError as error:  # 4xx/5xx may still carry GraphQL errors
                status, raw = error.code, error.read()
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            raise TaskwardenError("NETWORK_ERROR", "Taskwarden at %s is unreachable: %s" % (self.url, reason)) from None
        try:
            result = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise TaskwardenError(
                "HTTP_ERROR", "Taskwarden at %s answered HTTP %d without a GraphQL result" % (self.url, status), {"status": status}
            ) from None
        errors = result.get("errors") if isinstance(result, dict) else None
        if errors:
            first = errors[0]
            details = dict(first.get("extensions") or {})
            code = str(details.pop("code", "INTERNAL_SERVER_ERROR"))
            raise TaskwardenError(code, first.get("message", "request failed"), details)
        data = result.get("data") if isinstance(result, dict) else None
        if not data:
            raise TaskwardenError("HTTP_ERROR", "Taskwarden answered HTTP %d with no data" % status, {"status": status})
        return data

    # What the seed's scripts did, plus submitting work.

    def create_task(self, name: str, kind: str = "backtest", params: Optional[Dict[str, Any]] = None, **options: Any) -> Dict[str, Any]:
        """Submits a task. Options are CreateTaskInput fields in snake_case: max_attempts, timeout_minutes."""
        task_input: Dict[str, Any] = {"name": name, "kind": kind}
        if params is not None:
            task_input["params"] = params
        task_input.update({_camel(key): value for key, value in options.items()})
        return self.request(_CREATE, {"input": task_input})["createTask"]

    def get(self, id: str, events: int = 500) -> Optional[Dict[str, Any]]:
        """One task with its history (oldest first), or None."""
        return self.request(_GET, {"id": id, "events": events})["task"]

    def list(self, status: Union[str, Sequence[str], None] = None, kind: Optional[str] = None, first: int = 20) -> List[Dict[str, Any]]:
        """Tasks, newest first; ``status`` is one status or several."""
        statuses = [status] if isinstance(status, str) else (list(status) if status is not None else None)
        data = self.request(_LIST, {"status": statuses, "kind": kind, "first": first})
        return [edge["node"] for edge in data["tasks"]["edges"]]

    def stuck(self, timeout_minutes: float = 30) -> List[Dict[str, Any]]:
        """Running tasks stuck under this timeout, longest stuck first."""
        return self.request(_STUCK, {"timeoutMinutes": timeout_minutes})["stuckTasks"]

    def stop(self, id: str, reason: Optional[str] = None) -> Dict[str, Any]:
        return self.request(_STOP, {"id": id, "reason": reason})["stopTask"]

    def force_complete(self, id: str, status: str = "CANCELLED", reason: Optional[str] = None) -> Dict[str, Any]:
        return self.request(_FORCE, {"id": id, "status": status, "reason": reason})["forceComplete"]

    def delete(self, id: str) -> str:
        return self.request(_DELETE, {"id": id})["deleteTask"]

    def cleanup_stuck(self, timeout_minutes: float = 30, auto_fix: bool = False, action: str = "CANCEL") -> Dict[str, Any]:
        """What is stuck under this timeout (``found``) and, with auto_fix, what the action changed (``fixed``)."""
        variables = {"timeoutMinutes": timeout_minutes, "autoFix": auto_fix, "action": action}
        return self.request(_CLEANUP, variables)["cleanupStuck"]

    def stats(self) -> Dict[str, Any]:
        """Counts and timings (taskStats), with the monitor's state under ``monitor``."""
        data = self.request(_STATS)
        return dict(data["taskStats"], monitor=data["monitor"])

    # The lease holder's calls, which Worker makes for you.

    def claim_task(self, worker_id: str, kinds: Optional[Sequence[str]] = None) -> Optional[Dict[str, Any]]:
        """Starts the oldest pending task of these kinds: ``{"leaseToken", "task", ...}``, or None."""
        variables = {"workerId": worker_id, "kinds": list(kinds) if kinds else None}
        if self._lease_rate_field is not False:
            try:
                lease = self.request(_operation(_CLAIM % "heartbeatIntervalSeconds"), variables)["claimTask"]
                self._lease_rate_field = True
                return lease
            except TaskwardenError as error:
                # A server without the field refuses the whole document; ask it the older way from now on.
                if self._lease_rate_field or error.code != "GRAPHQL_VALIDATION_FAILED" or "heartbeatIntervalSeconds" not in error.message:
                    raise
                self._lease_rate_field = False
        return self.request(_operation(_CLAIM % ""), variables)["claimTask"]

    def report_progress(self, id: str, lease_token: str, progress: Optional[float] = None, message: Optional[str] = None) -> Dict[str, Any]:
        """A heartbeat; with progress and/or message when they changed."""
        variables = {"id": id, "leaseToken": lease_token, "progress": progress, "message": message}
        return self.request(_REPORT, variables)["reportProgress"]

    def complete_task(self, id: str, lease_token: str, result: Any = None) -> Dict[str, Any]:
        return self.request(_COMPLETE, {"id": id, "leaseToken": lease_token, "result": result})["completeTask"]

    def fail_task(self, id: str, lease_token: str, error: str) -> Dict[str, Any]:
        return self.request(_FAIL, {"id": id, "leaseToken": lease_token, "error": error})["failTask"]

    def release_task(self, id: str, lease_token: str, reason: Optional[str] = None) -> Dict[str, Any]:
        """RUNNING -> PENDING: hands the task back so another worker can claim it."""
        return self.request(_RELEASE, {"id": id, "leaseToken": lease_token, "reason": reason})["releaseTask"]


class TaskContext:
    """What a handler gets besides its task.

    ``cancelled`` is a threading.Event set when the task is no longer this
    worker's (stopped, force-completed, requeued, claimed elsewhere, refused
    with LEASE_MISMATCH) or handed back at shutdown; check it in long loops.
    Whatever the handler returns after that is discarded.
    """

    def __init__(self, running: "_RunningTask"):
        self._running = running
        self.task: Dict[str, Any] = running.task
        self.cancelled: threading.Event = running.cancelled
        self.log = logging.LoggerAdapter(log, {"task_id": running.task["id"]})

    @property
    def cancel_reason(self) -> Optional[str]:
        """Why ``cancelled`` is set, e.g. "LEASE_MISMATCH: ... CANCELLED"; None while it is not."""
        return self._running.lost

    def progress(self, percent: float, message: Optional[str] = None) -> None:
        """Reports progress (0..100) and, optionally, the current phase.

        Coalesced: however tight the loop, at most one write per ``progress_interval``
        reaches the server, always carrying the latest values. Never blocks.
        """
        self._running.progress(percent, message)

    def heartbeat(self) -> None:
        """Proves the worker is alive now (heartbeats also go out on their own). Raises TaskwardenError."""
        self._running.write({})


Handler = Callable[[Dict[str, Any], TaskContext], Any]


class Worker:
    """Claims tasks and runs ``handler(task, ctx)`` for each, in threads.

    ``task`` is a dict (id, name, kind, params, attempt, ...). A returned value
    (anything JSON can hold) completes the task; a raised exception fails it
    with the message and traceback. ``run()`` blocks until ``stop()`` or
    SIGTERM/SIGINT; ``start()`` runs the same loop in a background thread.
    Times are in seconds.
    """

    def __init__(
        self,
        url: str,
        kinds: Union[str, Sequence[str], None],
        handler: Handler,
        concurrency: int = 1,
        token: Optional[str] = None,
        worker_id: Optional[str] = None,
        *,
        heartbeat_interval: Optional[float] = None,
        progress_interval: float = 1.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 5.0,
        drain_timeout: float = 30.0,
        finish_retries: int = 8,
        handle_signals: bool = True,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = Client(url, token)
        self.kinds: Optional[List[str]] = [kinds] if isinstance(kinds, str) else (list(kinds) if kinds else None)
        self.handler = handler
        self.concurrency = concurrency
        self.worker_id = worker_id or "%s-%d-%s" % (socket.gethostname(), os.getpid(), secrets.token_hex(3))
        #: None: the rate the lease asks for (heartbeatIntervalSeconds), else 10 s.
        self.heartbeat_interval = heartbeat_interval
        self.progress_interval = progress_interval
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.drain_timeout = drain_timeout
        self.finish_retries = finish_retries
        self.handle_signals = handle_signals
        #: The error that ended the loop (a refused token), if any.
        self.error: Optional[TaskwardenError] = None
        self._active: Dict[str, _RunningTask] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._hurry = threading.Event()  # a second signal: hand back now, do not wait for the drain
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._loop_thread: Optional[threading.Thread] = None

    @property
    def running(self) -> int:
        """Tasks whose handlers are running now."""
        with self._lock:
            return len(self._active)

    def run(self) -> None:
        """Claims and runs tasks until stop() or SIGTERM/SIGINT, then drains and returns.

        Draining claims nothing new and waits up to ``drain_timeout`` for running
        handlers; tasks still unfinished are handed back (releaseTask) for another
        worker. A second signal hands them back at once. Raises TaskwardenError
        when the server refuses the token (UNAUTHENTICATED, FORBIDDEN).
        """
        self._take_loop(threading.current_thread())
        self._serve(self._install_signal_handlers())
        if self.error is not None:
            raise self.error

    def start(self) -> "Worker":
        """Runs the same loop in a background thread and returns at once (signals are left to the caller)."""
        thread = threading.Thread(target=self._serve, args=(lambda: None,), name="taskwarden-" + self.worker_id, daemon=True)
        self._take_loop(thread)
        thread.start()
        return self

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Claims nothing new, drains as run() does, and waits for the worker to stop (True once it has)."""
        self._stopping.set()
        self._wake.set()
        if self._loop_thread is None or self._loop_thread is threading.current_thread():
            return self._stopped.is_set()
        return self._stopped.wait(timeout)

    def _take_loop(self, thread: threading.Thread) -> None:
        with self._lock:
            if self._loop_thread is not None:
                raise RuntimeError("a worker runs once; make a new one")
            self._loop_thread = thread

    def _serve(self, restore_signals: Callable[[], None]) -> None:
        log.info("worker %s started (kinds: %s, concurrency %d)", self.worker_id, ",".join(self.kinds or ["any"]), self.concurrency)
        try:
            self._claim_loop()
        finally:
            self._drain()
            restore_signals()
            log.info("worker %s stopped", self.worker_id)
            self._stopped.set()

    def _install_signal_handlers(self) -> Callable[[], None]:
        """Signals reach only the main thread; elsewhere the host program calls stop()."""
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self._stopping.is_set():
                self._hurry.set()
                log.info("worker %s got %s again: handing unfinished tasks back now", self.worker_id, name)
            else:
                log.info("worker %s got %s: draining before exit (again to hand tasks back at once)", self.worker_id, name)
            self._stopping.set()
            self._wake.set()

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        for sig in previous:
            signal.signal(sig, on_signal)
        return restore

    def _claim_loop(self) -> None:
        idle = self.poll_interval
        while not self._stopping.is_set():
            if self.running >= self.concurrency:
                self._wake.wait(self.max_poll_interval)
                self._wake.clear()
                continue
            try:
                lease = self.client.claim_task(self.worker_id, self.kinds)
            except TaskwardenError as error:
                if error.code in ("UNAUTHENTICATED", "FORBIDDEN"):
                    self.error = error  # retrying cannot help: the token is wrong
                    log.error("worker %s cannot claim tasks: %s", self.worker_id, error)
                    return
                log.warning("worker %s could not claim a task (%s); retrying", self.worker_id, error)
                lease = None
            if lease and self._stopping.is_set():
                # Claimed while stopping: hand it straight back rather than start it.
                self._release_quietly(lease, "worker stopping")
                return
            if lease:
                idle = self.poll_interval
                self._run(lease)
                continue
            self._wake.wait(idle * random.uniform(0.75, 1.25))
            self._wake.clear()
            idle = min(idle * 2, self.max_poll_interval)

    def _run(self, lease: Dict[str, Any]) -> None:
        rate = self.heartbeat_interval or lease.get("heartbeatIntervalSeconds") or 10.0
        running = _RunningTask(self, lease["task"], lease["leaseToken"], float(rate))
        with self._lock:
            self._active[running.task["id"]] = running
        running.start()

    def _finished(self, running: "_RunningTask") -> None:
        with self._lock:
            self._active.pop(running.task["id"], None)
        self._wake.set()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.drain_timeout
        while self.running and time.monotonic() < deadline and not self._hurry.is_set():
            self._wake.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            self._wake.clear()
        with self._lock:
            unfinished = list(self._active.values())
        if unfinished:
            log.warning("worker %s: handing %d unfinished task(s) back", self.worker_id, len(unfinished))
        for running in unfinished:
            running.hand_back("worker stopped before the task finished")

    def _release_quietly(self, lease: Dict[str, Any], reason: str) -> None:
        try:
            self.client.release_task(lease["task"]["id"], lease["leaseToken"], reason)
        except TaskwardenError as error:
            log.warning("could not hand task %s back (%s); the monitor will find it", lease["task"]["id"], error)


class _RunningTask:
    """One claimed task: its handler thread, a beat thread (heartbeats and coalesced progress), the final write."""

    def __init__(self, worker: Worker, task: Dict[str, Any], lease_token: str, heartbeat_interval: float):
        self.worker = worker
        self.client = worker.client
        self.task = task
        self.lease_token = lease_token
        self.heartbeat_interval = heartbeat_interval
        self.cancelled = threading.Event()
        self.lost: Optional[str] = None
        self._state = threading.Condition()  # guards everything below; wakes the beat thread
        self._pending: Optional[Dict[str, Any]] = None
        self._last_write = time.monotonic()  # the claim was a sign of life too
        self._handler_done = False
        self._closed = False  # no more writes of any kind: finished, lost, or given up
        self._writing = threading.Lock()  # worker writes go out one at a time, in order
        self._refusal = ""
        self._label = "task %s (%s)" % (task["id"], task["name"])

    def start(self) -> None:
        name = "taskwarden-%s" % self.task["id"][:8]
        threading.Thread(target=self._beat, name=name + "-beat", daemon=True).start()
        threading.Thread(target=self._execute, name=name, daemon=True).start()

    def _execute(self) -> None:
        log.info("%s started", self._label)
        try:
            try:
                result, failure = self.worker.handler(self.task, TaskContext(self)), None
            except BaseException as error:  # noqa: B036 - whatever ends the handler ends the task
                result, failure = None, error
            with self._state:
                self._handler_done = True
                last_report, self._pending = self._pending, None
            if failure is not None and last_report and not self.lost:
                # Where it failed ("saving results" at 90%) is worth the extra write; a completion sets 100 anyway.
                try:
                    self.write(last_report)
                except TaskwardenError:
                    pass
            if self.lost:
                log.warning("%s: the handler ended after the task was taken away (%s); its outcome is discarded", self._label, self.lost)
            elif failure is None:
                if self._finish("complete", lambda: self.client.complete_task(self.task["id"], self.lease_token, result)) == "refused":
                    # The result itself was refused (not JSON, too large): record that instead of leaving the task running.
                    error_text = "the result could not be stored: " + self._refusal
                    self._finish("fail", lambda: self.client.fail_task(self.task["id"], self.lease_token, error_text))
            else:
                error_text = _error_text(failure)
                self._finish("fail", lambda: self.client.fail_task(self.task["id"], self.lease_token, error_text))
        finally:
            self._close()
            self.worker._finished(self)

    def _finish(self, what: str, call: Callable[[], Any]) -> str:
        """The final write, with the lease, retried with backoff while the server is unreachable.

        The beat thread goes on heartbeating meanwhile, so the task does not look dead.
        """
        attempt = 0
        while True:
            try:
                with self._writing:
                    if self.lost:
                        return "lost"
                    call()
                    self._close()
                log.info("%s %s", self._label, "completed" if what == "complete" else "failed")
                return "done"
            except TaskwardenError as error:
                if error.code == "LEASE_MISMATCH":
                    log.warning("could not %s %s: the lease is gone; nothing was written (%s)", what, self._label, error.message)
                    self.lose("LEASE_MISMATCH: " + error.message)
                    return "lost"
                if not error.network_error:
                    self._refusal = error.message
                    log.error("the server refused to %s %s: %s", what, self._label, error)
                    return "refused"
                if attempt >= self.worker.finish_retries:
                    log.error("gave up trying to %s %s (%s); the monitor will find it", what, self._label, error)
                    return "gave up"
                delay = min(0.25 * 2**attempt, 15.0) * random.uniform(0.75, 1.25)
                log.warning("could not reach the server to %s %s (%s); retrying in %.1f s", what, self._label, error, delay)
                attempt += 1
                time.sleep(delay)

    def progress(self, percent: float, message: Optional[str]) -> None:
        with self._state:
            if self._closed or self._handler_done:
                return
            self._pending = {"progress": percent} if message is None else {"progress": percent, "message": _clip(message, _MAX_TEXT)}
            self._state.notify()

    def write(self, report: Dict[str, Any]) -> None:
        """A heartbeat ({}) or a progress report; a LEASE_MISMATCH sets ``cancelled``."""
        with self._writing:
            with self._state:
                if self._closed:
                    return
                self._last_write = time.monotonic()
            try:
                self.client.report_progress(self.task["id"], self.lease_token, **report)
            except TaskwardenError as error:
                if error.code == "LEASE_MISMATCH":
                    self.lose("LEASE_MISMATCH: " + error.message)
                elif error.code == "BAD_USER_INPUT":
                    log.warning("progress report for %s refused: %s", self._label, error.message)
                else:
                    log.debug("heartbeat for %s failed (%s); will retry at the next one", self._label, error)
                raise

    def _beat(self) -> None:
        """Sends a heartbeat when nothing was written for a heartbeat interval, and pending progress at most once per progress interval."""
        while True:
            with self._state:
                if self._closed:
                    return
                now = time.monotonic()
                due = self._last_write + self.heartbeat_interval
                if self._pending is not None:
                    due = min(due, self._last_write + self.worker.progress_interval)
                if due > now:
                    self._state.wait(due - now)
                    continue
                report, self._pending = self._pending or {}, None
            try:
                self.write(report)
            except TaskwardenError:
                pass  # logged by write(); the next beat tries again

    def lose(self, reason: str, announce: bool = True) -> None:
        """The task is not ours any more: stop writing and tell the handler."""
        with self._state:
            if self.lost is not None:
                return
            self.lost = reason
            self._closed = True
            self._state.notify_all()
        self.cancelled.set()
        if announce:
            log.warning("%s is no longer this worker's: %s", self._label, reason)

    def hand_back(self, reason: str) -> None:
        """Gives the task back (RUNNING -> PENDING) and sets ``cancelled``: used past the drain deadline."""
        with self._state:
            if self._closed:
                return
        self.lose(reason, announce=False)
        try:
            self.client.release_task(self.task["id"], self.lease_token, reason)
            log.info("%s handed back", self._label)
        except TaskwardenError as error:
            log.warning("could not hand %s back (%s); the monitor will find it", self._label, error)

    def _close(self) -> None:
        with self._state:
            self._closed = True
            self._state.notify_all()


def _error_text(error: BaseException) -> str:
    """The exception's own line first (histories show the first line as the reason), then the traceback from the handler down."""
    headline = traceback.format_exception_only(type(error), error)[-1].strip() or type(error).__name__
    handler_frames = error.__traceback__.tb_next if error.__traceback__ else None  # the first frame is the worker calling the handler
    trace = "".join(traceback.format_exception(type(error), error, handler_frames)).rstrip()
    text = (headline + "\n" + trace).replace("\x00", "\\x00")
    if _utf16_length(text) <= _MAX_ERROR:
        return text
    # The innermost frames are at the end of a traceback: keep the head and the tail.
    half = _MAX_ERROR // 2 - 10
    return _take(text, half) + "\n[...]\n" + _take(text[::-1], half)[::-1]


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _take(text: str, limit: int) -> str:
    """The longest start of ``text`` within ``limit`` UTF-16 units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return text[:index]
    return text


def _clip(text: str, limit: int) -> str:
    return text if _utf16_length(text) <= limit else _take(text, limit - 1) + "\u2026"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
