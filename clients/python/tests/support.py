"""What the tests share: the server the harness started (test/python.test.ts), tokens per role, and waiting for conditions."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import taskwarden

URL = os.environ.get("TASKWARDEN_URL", "")
ADMIN = os.environ.get("TASKWARDEN_ADMIN_TOKEN")
WORKER = os.environ.get("TASKWARDEN_WORKER_TOKEN")
VIEWER = os.environ.get("TASKWARDEN_VIEWER_TOKEN")
STUCK_TIMEOUT = float(os.environ.get("TASKWARDEN_STUCK_TIMEOUT", "3"))
CLIENT_DIR = Path(__file__).resolve().parent.parent
REPO = CLIENT_DIR.parent.parent

# Generous bounds for conditions under a loaded machine; tests wait for conditions, never for fixed times.
PATIENCE = 30.0


def until(check: Callable[[], Any], timeout: float = PATIENCE, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s not met within %.0f s" % (what, timeout))
        time.sleep(0.05)


class ServerTest(unittest.TestCase):
    """A test against the harness's server: an operator client, a fresh kind per test, and cleanup of its workers."""

    def setUp(self) -> None:
        if not URL:
            raise unittest.SkipTest("TASKWARDEN_URL is not set: run these through test/python.test.ts")
        self.admin = taskwarden.Client(URL, ADMIN)
        self.kind = "py-%s" % uuid.uuid4().hex[:10]
        self.workers: List[taskwarden.Worker] = []

    def tearDown(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=PATIENCE)

    def worker(self, handler: taskwarden.Handler, **options: Any) -> taskwarden.Worker:
        options.setdefault("token", WORKER)
        options.setdefault("poll_interval", 0.05)
        options.setdefault("max_poll_interval", 0.2)
        options.setdefault("drain_timeout", 2)
        worker = taskwarden.Worker(URL, [self.kind], handler, **options)
        self.workers.append(worker)
        return worker.start()

    def create(self, name: str = "task", **options: Any) -> Dict[str, Any]:
        return self.admin.create_task(name, kind=self.kind, **options)

    def task(self, id: str) -> Dict[str, Any]:
        return self.admin.get(id)

    def until_status(self, id: str, *statuses: str) -> Dict[str, Any]:
        return until(lambda: (lambda t: t if t["status"] in statuses else None)(self.task(id)), what="status in %s" % (statuses,))

    def events(self, id: str, type: Optional[str] = None) -> List[Dict[str, Any]]:
        return [e for e in self.task(id)["events"] if type is None or e["type"] == type]


def spawn_worker_process(kind: str, *args: str, script: Optional[Path] = None, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    """A worker in its own Python process, so that it can really be killed."""
    environment = dict(os.environ, PYTHONPATH=str(CLIENT_DIR), TASKWARDEN_TOKEN=WORKER or "", TASKWARDEN_KINDS=kind)
    environment.update(env or {})
    command = [sys.executable, str(script or Path(__file__).with_name("worker_process.py")), *args]
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Relay:
    """A TCP relay in front of the server that the test can cut and restore, as a network outage would."""

    def __init__(self, url: str):
        host_port = url.split("//", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        self.target = (host, int(port))
        self.path = "/" + url.split("//", 1)[1].split("/", 1)[1]
        self.port = 0
        self.connections: List[socket.socket] = []
        self.listener: Optional[socket.socket] = None
        self.lock = threading.Lock()
        self.restore()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d%s" % (self.port, self.path)

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuses new connections and drops open ones."""
        with self.lock:
            listener, self.listener = self.listener, None
            connections, self.connections = self.connections, []
        if listener:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the relay's thread (close alone does not)
            listener.close()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
