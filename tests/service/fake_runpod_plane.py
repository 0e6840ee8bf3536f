"""A fake RunPod serverless data plane on loopback (POST /v2/<ep>/run, GET /v2/<ep>/status/<id>)
answering with RunPod's documented shapes, for the service tests (no webhooks of its own: the
tests play RunPod's webhook deliveries themselves, so they control repeats and ordering)."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeRunPod:
    def __init__(self, api_key: str, endpoint_id: str = "ep-test") -> None:
        self.api_key = api_key
        self.endpoint_id = endpoint_id
        self.runs: list[dict[str, Any]] = []  # bodies received on /run
        self.status_calls: list[str] = []
        self.jobs: dict[str, dict[str, Any]] = {}  # RunPod id -> /status answer
        self.run_mode = "accept"  # accept | refuse | error | busy | garbage
        self.status_mode = "answer"  # answer | error
        self.on_run: Any = None  # called (no arguments) as each /run arrives, before it is answered
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v2/{self.endpoint_id}"

    def start(self) -> FakeRunPod:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def set_status(self, runpod_id: str, answer: dict[str, Any]) -> None:
        with self._lock:
            self.jobs[runpod_id] = answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_message(self, *args: Any) -> None:  # quiet: tests read state, not logs
                pass

            def _reply(self, status: int, payload: Any, raw: bytes | None = None) -> None:
                body = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                if self.headers.get("authorization") != f"Bearer {fake.api_key}":
                    self._reply(401, {"error": "Unauthorized: bad API key"})
                    return False
                return True

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if not self._authorized():
                    return
                if self.path != f"/v2/{fake.endpoint_id}/run":
                    self._reply(404, {"error": "not found"})
                    return
                body = json.loads(raw)
                with fake._lock:
                    fake.runs.append(body)
                    mode = fake.run_mode
                if fake.on_run is not None:
                    fake.on_run()
                if mode == "echo":  # a hostile or buggy peer echoing our credentials back
                    self._reply(401, {"error": f"bad key {self.headers.get('authorization')}", "input": body})
                elif mode == "refuse":
                    self._reply(400, {"error": "input is invalid for this endpoint"})
                elif mode == "error":
                    self._reply(500, {"error": "internal error"})
                elif mode == "busy":
                    self._reply(429, {"error": "rate limited"})
                elif mode == "garbage":
                    self._reply(200, None, raw=b"<html>gateway</html>")
                else:
                    rid = f"{uuid.uuid4()}-u1"
                    fake.set_status(rid, {"id": rid, "status": "IN_QUEUE", "delayTime": 0})
                    self._reply(200, {"id": rid, "status": "IN_QUEUE"})

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                prefix = f"/v2/{fake.endpoint_id}/status/"
                if not self.path.startswith(prefix):
                    self._reply(404, {"error": "not found"})
                    return
                rid = self.path[len(prefix):]
                with fake._lock:
                    fake.status_calls.append(rid)
                    answer = fake.jobs.get(rid)
                if fake.status_mode == "error":
                    self._reply(503, {"error": "no capacity"})
                elif answer is None:
                    self._reply(404, {"error": "request does not exist"})
                else:
                    self._reply(200, answer)

        return Handler
