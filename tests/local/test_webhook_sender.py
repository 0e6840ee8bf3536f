"""The emulator's webhook sender against a service that hangs: each attempt ends at the timeout, RunPod's retries
follow, the job is given up (for `goldgate recover`), and other jobs' webhooks still arrive."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from processes import wait_until

from goldgate.local.runpod import EmulatorConfig
from goldgate.local.runpod.eventlog import EventLog
from goldgate.local.runpod.webhooks import WebhookDispatcher


@pytest.fixture
def hanging() -> Iterator[str]:
    """A listener that accepts connections and never answers (a service stuck on a lock, a stopped process)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/runpod/webhook?job=a&sig=b"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def healthy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/runpod/webhook?job=c&sig=d"
    server.shutdown()
    server.server_close()


def test_a_hanging_service_costs_each_attempt_its_timeout_and_the_job_is_given_up(hanging: str,
                                                                                  healthy: str) -> None:
    config = EmulatorConfig(webhook_timeout_s=0.3, webhook_retry_delay_s=0.1, webhook_attempts=3)
    dispatcher = WebhookDispatcher(config, EventLog(io.StringIO(), "staging"), senders=2)
    try:
        for n in range(3):  # more stuck deliveries than senders
            dispatcher.send(f"stuck-{n}", hanging, {"id": f"stuck-{n}", "status": "COMPLETED"})
        dispatcher.send("fine", healthy, {"id": "fine", "status": "COMPLETED"})
        assert wait_until(lambda: dispatcher.pending() == 0, 60), "deliveries to a hanging service never ended"
        by_job: dict[str, list[str]] = {}
        for record in dispatcher.history:
            by_job.setdefault(record.job_id, []).append(record.outcome)
        assert by_job["fine"] == ["ok"]
        for n in range(3):
            outcomes = by_job[f"stuck-{n}"]
            assert len(outcomes) == 3 and all(o.startswith("error ") and "Timeout" in o for o in outcomes), outcomes
    finally:
        dispatcher.stop()
