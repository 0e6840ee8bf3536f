"""The worker against a ComfyUI that misbehaves on the wire: a stand-in on loopback forwards to the
emulator and answers chosen GET /history polls itself with a fault (a reset, a 5xx, a 4xx, bad JSON)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from worker_harness import ACCESS_KEY, SECRET_KEY, job, s3_client

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker import handler as handler_module
from images.worker.handler import run_job

# What the stand-in answers to a GET /history poll instead of forwarding it.
FAULTS: dict[str, tuple[int, bytes, str] | None] = {
    "reset": None,  # the connection is reset before any answer
    "503": (503, b'{"error": "busy"}', "application/json"),
    "502-html": (502, b"<html><body>502 Bad Gateway</body></html>", "text/html"),
    "404": (404, b"404: Not Found", "text/plain"),
    "400": (400, b'{"error": "bad request"}', "application/json"),
    "not-json": (200, b"<html>not json</html>", "text/html"),
    "json-list": (200, b"[]", "application/json"),
}


class FaultyComfy:
    """Forwards every request to `upstream`; GET /history polls take their answer from `faults` in turn
    (`forever` repeats the last one), and every POST the worker sends is recorded."""

    def __init__(self, upstream: str, faults: list[str], forever: bool = False,
                 lose_prompt_answer: bool = False) -> None:
        self.upstream = upstream
        self.faults = list(faults)
        self.forever = forever
        self.lose_prompt_answer = lose_prompt_answer  # POST /prompt reaches ComfyUI; its answer is reset
        self.posts: list[tuple[str, Any]] = []
        self.prompt_ids: list[str] = []  # as ComfyUI answered POST /prompt
        self.history_polls = 0
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/history/"):
                    fault = stand_in._next_fault()
                    if fault is not None:
                        return self._fault(fault)
                self._forward(None)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stand_in._lock:
                    stand_in.posts.append((self.path, json.loads(raw) if raw else None))
                self._forward(raw)

            def _fault(self, name: str) -> None:
                answer = FAULTS[name]
                if answer is None:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                status, body, content_type = answer
                self._reply(status, body, content_type)

            def _forward(self, body: bytes | None) -> None:
                req = urllib.request.Request(stand_in.upstream + self.path, data=body, method=self.command,
                                             headers={"Content-Type": "application/json"} if body else {})
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
                except urllib.error.HTTPError as exc:
                    status, data, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
                if self.path == "/prompt" and status == 200:
                    with stand_in._lock:
                        stand_in.prompt_ids.append(json.loads(data)["prompt_id"])
                    if stand_in.lose_prompt_answer:
                        return self._fault("reset")
                self._reply(status, data, ctype)

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # a reset client is the point here
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def _next_fault(self) -> str | None:
        with self._lock:
            self.history_polls += 1
            if not self.faults:
                return None
            return self.faults[0] if self.forever and len(self.faults) == 1 else self.faults.pop(0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultyComfy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def withdrawals(self) -> list[tuple[str, Any]]:
        with self._lock:
            return [(path, body) for path, body in self.posts if path in ("/interrupt", "/queue")]


@pytest.fixture
def faulty() -> Iterator[Callable[..., FaultyComfy]]:
    started: list[FaultyComfy] = []

    def start(upstream: str, faults: list[str], forever: bool = False, **options: bool) -> FaultyComfy:
        stand_in = FaultyComfy(upstream, faults, forever, **options).start()
        started.append(stand_in)
        return stand_in

    yield start
    for stand_in in started:
        stand_in.stop()


def _queue(comfy: ComfyUIEmulator) -> dict[str, Any]:
    with urllib.request.urlopen(comfy.url + "/queue", timeout=10) as resp:
        return json.loads(resp.read())


def _idle_within(comfy: ComfyUIEmulator, bound_s: float) -> bool:
    """True once the emulator runs and queues nothing; its renders here take 120 s, so only a withdrawn
    prompt lets it go idle within the bound."""
    end = time.monotonic() + bound_s
    while time.monotonic() < end:
        if _queue(comfy) == {"queue_running": [], "queue_pending": []}:
            return True
        time.sleep(0.05)
    return False


# -- a transient poll failure is retried ------------------------------------------------------------


@pytest.mark.parametrize("faults", [["reset"], ["503"], ["502-html"], ["404"], ["reset", "503", "reset"]],
                         ids=["reset", "503", "502-html", "404-pending", "three-in-a-row"])
def test_a_dropped_history_poll_is_retried_and_the_job_completes(faults, comfy, models_dir, runtime_factory,
                                                                  faulty, storage):
    stand_in = faulty(comfy.url, faults)
    out = run_job(job(), runtime_factory(stand_in.url, models_dir))
    assert "error" not in out, out
    assert stand_in.history_polls > len(faults)  # the faults were served, then a real answer
    head = s3_client(storage.endpoint_url).head_object(Bucket=storage.bucket, Key=out["images"][0]["key"])
    assert head["ContentLength"] == out["images"][0]["bytes"]
    assert stand_in.withdrawals() == []  # a job that completes withdraws nothing


# -- a job that fails after queueing withdraws its prompt -------------------------------------------


def _assert_withdrawn(stand_in: FaultyComfy, comfy: ComfyUIEmulator, prompt_id: str) -> None:
    assert ("/queue", {"delete": [prompt_id]}) in stand_in.withdrawals()
    assert ("/interrupt", {"prompt_id": prompt_id}) in stand_in.withdrawals()
    assert _idle_within(comfy, 30), _queue(comfy)  # the 120 s render stopped: the next job would not wait


@pytest.mark.parametrize(("fault", "expected"), [("400", "answered HTTP 400"), ("not-json", "non-JSON"),
                                                 ("json-list", "not a JSON object")])
def test_a_non_transient_history_answer_fails_clearly_and_withdraws_the_prompt(fault, expected, models_dir,
                                                                              comfy_factory, runtime_factory,
                                                                              faulty, storage):
    comfy = comfy_factory(models_dir, render_delay_s=120)
    assert comfy.wait_listening(10)
    stand_in = faulty(comfy.url, [fault])
    out = run_job(job(), runtime_factory(stand_in.url, models_dir))
    assert set(out) == {"error"}
    assert expected in out["error"], out["error"]
    (prompt_id,) = stand_in.prompt_ids
    assert prompt_id in out["error"]
    _assert_withdrawn(stand_in, comfy, prompt_id)
    assert "Contents" not in s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)


def test_history_failing_until_the_deadline_fails_and_withdraws_the_prompt(models_dir, comfy_factory,
                                                                           runtime_factory, faulty):
    comfy = comfy_factory(models_dir, render_delay_s=120)
    assert comfy.wait_listening(10)
    stand_in = faulty(comfy.url, ["503"], forever=True)
    out = run_job(job(), runtime_factory(stand_in.url, models_dir, COMFY_JOB_TIMEOUT_S="1.5"))
    assert "did not finish prompt" in out["error"] and "COMFY_JOB_TIMEOUT_S" in out["error"], out
    assert "HTTP 503" in out["error"]  # the operator learns the polls failed, not only that time ran out
    assert stand_in.history_polls > 1
    (prompt_id,) = stand_in.prompt_ids
    _assert_withdrawn(stand_in, comfy, prompt_id)


def test_a_prompt_whose_queue_answer_is_lost_is_withdrawn(models_dir, comfy_factory, runtime_factory, faulty):
    # ComfyUI queued the prompt but the answer naming it never arrived: the worker names its prompts up
    # front so it can still withdraw this one.
    comfy = comfy_factory(models_dir, render_delay_s=120)
    assert comfy.wait_listening(10)
    stand_in = faulty(comfy.url, [], lose_prompt_answer=True)
    out = run_job(job(), runtime_factory(stand_in.url, models_dir))
    assert "cannot reach ComfyUI" in out["error"] and "POST /prompt" in out["error"], out
    (prompt_id,) = stand_in.prompt_ids
    _assert_withdrawn(stand_in, comfy, prompt_id)
    assert prompt_id in out["error"]


def test_a_node_failure_after_transient_polls_is_reported_not_retried(comfy, models_dir, runtime_factory, faulty,
                                                                      monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(comfy.backend, "render", out_of_memory)
    stand_in = faulty(comfy.url, ["reset"])
    out = run_job(job(), runtime_factory(stand_in.url, models_dir))
    assert out["error"].startswith("ComfyUI failed while running prompt"), out
    assert "CUDA out of memory" in out["error"]


# -- every error returned to RunPod is masked and capped ---------------------------------------------


def test_a_secret_in_a_comfyui_node_error_never_reaches_the_returned_error(comfy, models_dir, runtime_factory,
                                                                           monkeypatch, logs):
    # A custom node that echoes its environment in an exception is enough to put a key into ComfyUI's
    # history; RunPod stores the handler's error and the API shows it.
    def leaky(*args, **kwargs):
        raise RuntimeError(f"boto3 failed with key {ACCESS_KEY} secret {SECRET_KEY}")

    monkeypatch.setattr(comfy.backend, "render", leaky)
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert out["error"].startswith("ComfyUI failed while running prompt"), out
    assert SECRET_KEY not in out["error"] and ACCESS_KEY not in out["error"]
    assert "[redacted]" in out["error"]
    assert SECRET_KEY not in logs.getvalue()


def test_a_secret_in_the_job_input_is_not_echoed_in_the_returned_error(comfy, models_dir, runtime_factory):
    out = run_job(job({"prompt": "x", "sampler": SECRET_KEY}), runtime_factory(comfy.url, models_dir))
    assert set(out) == {"error"}
    assert "input 'sampler' must be one of" in out["error"], out
    assert SECRET_KEY not in out["error"]


def test_a_runpod_api_key_in_the_worker_environment_is_masked_in_returned_errors(comfy, models_dir,
                                                                                 runtime_factory, monkeypatch,
                                                                                 logs):
    api_key = "rpa_GOLDGATETESTKEY0123456789"

    def leaky(*args, **kwargs):
        raise RuntimeError(f"request with Authorization: Bearer {api_key} failed")

    monkeypatch.setattr(comfy.backend, "render", leaky)
    out = run_job(job(), runtime_factory(comfy.url, models_dir, RUNPOD_AI_API_KEY=api_key))
    assert out["error"].startswith("ComfyUI failed while running prompt"), out
    assert api_key not in out["error"] and api_key not in logs.getvalue()


def test_a_huge_error_is_cut_after_masking(comfy, models_dir, runtime_factory, monkeypatch):
    # The message is nothing but the secret, over and over, so one copy straddles the cut wherever it
    # falls: cutting before masking would leave that copy's first characters in the error.
    def verbose(*args, **kwargs):
        raise RuntimeError(" ".join([SECRET_KEY] * 5000))

    monkeypatch.setattr(comfy.backend, "render", verbose)
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert out["error"].startswith("ComfyUI failed while running prompt"), out["error"][:200]
    echoed = out["error"].split("RuntimeError: ", 1)[1]
    assert echoed and set(echoed) <= set("[redacted] …"), echoed[-80:]
    assert len(out["error"]) <= handler_module.MAX_ERROR_CHARS


# -- ComfyUI's process dies ---------------------------------------------------------------------------


def test_comfyui_dying_mid_render_fails_the_job_at_once_and_retires_the_worker(models_dir, comfy_factory,
                                                                               runtime_factory, logs):
    # Out of host memory, a segfault in a custom node: ComfyUI's process is gone and the start script
    # does not bring it back, so the prompt can never finish. Retrying the polls until the job's bound
    # bills GPU time for nothing and ends in a misleading "did not finish in time"; the worker must also
    # ask RunPod to replace it, or every later job it takes fails the same way.
    comfy = comfy_factory(models_dir, render_delay_s=120)
    assert comfy.wait_listening(10)
    # A bound no loaded machine reaches before ComfyUI is stopped: the job must end at once, not at the bound.
    runtime = runtime_factory(comfy.url, models_dir, COMFY_JOB_TIMEOUT_S="60")
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(run_job(job(), runtime)))
    worker.start()
    while "prompt_queued" not in logs.getvalue():
        worker.join(0.05)
        assert worker.is_alive(), result
    comfy.stop()
    worker.join(90)
    assert "stopped answering" in result["error"] and "connection refused" in result["error"].lower(), result
    assert "did not finish prompt" not in result["error"]
    assert result.get("refresh_worker") is True


def test_a_worker_whose_comfyui_died_between_jobs_fails_the_next_job_at_once_and_retires(comfy, models_dir,
                                                                                      runtime_factory):
    runtime = runtime_factory(comfy.url, models_dir, COMFY_READY_TIMEOUT_S="8")
    assert "error" not in run_job(job(), runtime)
    comfy.stop()
    out = run_job(job(job_id="job-2"), runtime)
    assert "stopped answering" in out["error"] and "was not ready after" not in out["error"], out
    assert out.get("refresh_worker") is True


def test_comfyui_that_never_came_up_retires_the_worker(models_dir, comfy_factory, runtime_factory):
    comfy = comfy_factory(models_dir, startup_delay_s=120)
    out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_READY_TIMEOUT_S="0.5"))
    assert out["error"].startswith(f"ComfyUI at {comfy.url} was not ready after 0.5 s"), out
    assert out.get("refresh_worker") is True


@pytest.mark.parametrize(("message", "retire"), [
    ("CUDA error: an illegal memory access was encountered", True),
    ("CUDA error: unspecified launch failure", True),
    ("CUDA out of memory. Tried to allocate 2.00 GiB", False),
    ("CUDA error: out of memory", False),
])
def test_a_gpu_left_unusable_by_a_failed_node_retires_the_worker(message, retire, comfy, models_dir,
                                                                   runtime_factory, monkeypatch):
    # A CUDA error other than out-of-memory poisons the process's CUDA context: ComfyUI fails every
    # later prompt the same way, so the worker must ask RunPod to replace it. Out of memory passes.
    def failing(*args, **kwargs):
        raise RuntimeError(message)

    monkeypatch.setattr(comfy.backend, "render", failing)
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert out["error"].startswith("ComfyUI failed while running prompt") and message in out["error"], out
    assert out.get("refresh_worker", False) is retire
