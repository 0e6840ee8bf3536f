"""A small client for the ComfyUI HTTP API the worker needs: readiness, /prompt, /history, /view.

It polls /history rather than holding a websocket: one job at a time per worker makes polling
cheap, and it needs nothing beyond the stdlib.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

REQUEST_TIMEOUT_S = 30.0
MAX_IMAGE_BYTES = 200 * 1024 * 1024


class ComfyError(RuntimeError):
    """ComfyUI answered in a way the worker cannot use; the message says what happened."""


class ComfyUnreachable(ComfyError):
    """No HTTP answer from ComfyUI (connection refused, reset, timed out)."""


class ComfyNotReady(ComfyError):
    """ComfyUI did not come up within the readiness bound."""


class ComfyTimeout(ComfyError):
    """A prompt did not finish within the job bound."""


class ComfyExecutionError(ComfyError):
    """ComfyUI accepted the prompt but a node failed while running it, or the run was interrupted."""


class ComfyCancelled(ComfyError):
    """The job was stopped (RunPod cancel or timeout) while the worker waited; its prompt was cancelled."""


class PromptRejected(ComfyError):
    """ComfyUI refused the prompt at validation (HTTP 400); `error` and `node_errors` are ComfyUI's."""

    def __init__(self, error: Any, node_errors: Any) -> None:
        self.error = error if isinstance(error, dict) else {"type": "unknown", "message": str(error),
                                                            "details": "", "extra_info": {}}
        self.node_errors = node_errors if isinstance(node_errors, dict) else {}
        super().__init__(f"ComfyUI rejected the prompt: {self.error.get('message')}: {self.error.get('details')}")


@dataclass(frozen=True)
class OutputImage:
    node: str
    filename: str
    subfolder: str
    type: str


class ComfyClient:
    def __init__(self, base_url: str, poll_interval_s: float = 0.2) -> None:
        self.base_url = base_url.rstrip("/")
        self.poll_interval_s = poll_interval_s

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as resp:
                return resp.status, resp.read(MAX_IMAGE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(1_000_000)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ComfyUnreachable(f"cannot reach ComfyUI at {self.base_url} ({method} {path}): {reason}") from None

    def _json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, raw = self._request(method, path, body)
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            raise ComfyError(f"ComfyUI {method} {path} answered HTTP {status} with non-JSON: {raw[:200]!r}") from None

    def is_ready(self) -> tuple[bool, str]:
        try:
            status, _ = self._request("GET", "/system_stats")
        except ComfyUnreachable as exc:
            return False, str(exc)
        return status == 200, f"HTTP {status}"

    def _pause(self, stop: threading.Event | None, doing: str) -> None:
        """Sleeps one poll interval; raises ComfyCancelled as soon as `stop` is set."""
        if stop is None:
            time.sleep(self.poll_interval_s)
        elif stop.wait(self.poll_interval_s):
            raise ComfyCancelled(f"job stopped while {doing}")

    def wait_ready(self, timeout_s: float, stop: threading.Event | None = None) -> float:
        """Waits until /system_stats answers 200; returns the seconds waited. Tolerates a cold start."""
        start = time.monotonic()
        while True:
            ready, last = self.is_ready()
            if ready:
                return time.monotonic() - start
            if time.monotonic() - start >= timeout_s:
                raise ComfyNotReady(
                    f"ComfyUI at {self.base_url} was not ready after {round(timeout_s, 1):g} s (last: {last}); it may "
                    f"still be loading models (COMFY_READY_TIMEOUT_S bounds this wait, COMFY_JOB_TIMEOUT_S the whole "
                    f"job) or have crashed (see its log)")
            self._pause(stop, "waiting for ComfyUI to start")

    def queue_prompt(self, graph: dict[str, Any], client_id: str) -> str:
        status, body = self._json("POST", "/prompt", {"prompt": graph, "client_id": client_id})
        if status == 400 and isinstance(body, dict):
            raise PromptRejected(body.get("error"), body.get("node_errors"))
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("prompt_id"), str):
            raise ComfyError(f"ComfyUI POST /prompt answered HTTP {status}: {str(body)[:300]}")
        if body.get("node_errors"):
            # ComfyUI queued the outputs that validate and dropped the rest: the job would come back with
            # fewer images than its workflow saves. Withdraw it and report what failed instead.
            self._cancel(body["prompt_id"])
            raise PromptRejected({"type": "prompt_outputs_failed_validation", "details": "",
                                  "message": "some outputs failed validation and would not be saved",
                                  "extra_info": {}}, body["node_errors"])
        return body["prompt_id"]

    def wait_for_outputs(self, prompt_id: str, timeout_s: float,
                         stop: threading.Event | None = None) -> list[OutputImage]:
        """Polls /history/{id} until the prompt finishes; returns its saved images. When `stop` is set the
        prompt is cancelled in ComfyUI (a render nobody waits for would hold the GPU) and ComfyCancelled raised."""
        start = time.monotonic()
        path = "/history/" + urllib.parse.quote(prompt_id, safe="")
        while True:
            status, body = self._json("GET", path)
            if status != 200:
                raise ComfyError(f"ComfyUI GET {path} answered HTTP {status}")
            entry = body.get(prompt_id) if isinstance(body, dict) else None
            if isinstance(entry, dict) and self._finished(entry):
                return self._images(prompt_id, entry)
            if time.monotonic() - start >= timeout_s:
                self._cancel(prompt_id)
                raise ComfyTimeout(f"ComfyUI did not finish prompt {prompt_id} within {round(timeout_s, 1):g} s (what "
                                   f"was left of the job's COMFY_JOB_TIMEOUT_S); the prompt was cancelled")
            try:
                self._pause(stop, f"ComfyUI ran prompt {prompt_id}")
            except ComfyCancelled as exc:
                self._cancel(prompt_id)
                raise ComfyCancelled(f"{exc}; the prompt was cancelled in ComfyUI") from None

    @staticmethod
    def _finished(entry: dict[str, Any]) -> bool:
        status = entry.get("status")
        # Older ComfyUI wrote history entries without a status, only once the prompt was done.
        return not isinstance(status, dict) or bool(status.get("completed")) or status.get("status_str") == "error"

    @staticmethod
    def _images(prompt_id: str, entry: dict[str, Any]) -> list[OutputImage]:
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        if status.get("status_str") == "error":
            detail = "no detail"
            for message in status.get("messages") or []:
                if not (isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)):
                    continue
                info = message[1]
                if message[0] == "execution_error":
                    detail = (f"node {info.get('node_id')} ({info.get('node_type')}): "
                              f"{info.get('exception_type')}: {info.get('exception_message')}")
                elif message[0] == "execution_interrupted":
                    raise ComfyExecutionError(
                        f"ComfyUI interrupted prompt {prompt_id} at node {info.get('node_id')} "
                        f"({info.get('node_type')}) before it saved an image: something sent POST /interrupt "
                        f"(another client of this ComfyUI, or a cancelled job); resubmit the job")
            raise ComfyExecutionError(f"ComfyUI failed while running prompt {prompt_id}: {detail}")
        images = []
        for node_id, output in sorted((entry.get("outputs") or {}).items()):
            for image in (output or {}).get("images") or []:
                if isinstance(image, dict) and image.get("type") == "output" and image.get("filename"):
                    images.append(OutputImage(node_id, str(image["filename"]), str(image.get("subfolder") or ""),
                                              "output"))
        return images

    def _cancel(self, prompt_id: str) -> None:
        try:
            self._request("POST", "/queue", {"delete": [prompt_id]})
            # With the id, ComfyUI interrupts only if this prompt is the one running (older builds ignore it).
            self._request("POST", "/interrupt", {"prompt_id": prompt_id})
        except ComfyError:
            pass  # best effort: the job fails with its own clear error either way

    def fetch_image(self, image: OutputImage) -> bytes:
        query = urllib.parse.urlencode({"filename": image.filename, "subfolder": image.subfolder, "type": image.type})
        status, data = self._request("GET", "/view?" + query)
        if status != 200:
            raise ComfyError(f"ComfyUI GET /view for {image.filename} answered HTTP {status}")
        if len(data) > MAX_IMAGE_BYTES:
            raise ComfyError(f"ComfyUI output {image.filename} is larger than {MAX_IMAGE_BYTES} bytes")
        return data
