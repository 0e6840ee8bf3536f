"""A small client for the ComfyUI HTTP API the worker needs: readiness, /upload/image, /prompt, /history, /view.

It polls /history rather than holding a websocket: one job at a time per worker makes polling
cheap, and it needs nothing beyond the stdlib (and urllib3's multipart encoder, for an upload). A poll that fails in passing is retried until the job's
bound; a wait that ends any other way withdraws the prompt, so no render outlives its job. While no entry
comes, /queue is read now and then: a prompt in neither is lost (ComfyUI restarted), and the wait ends at once.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from urllib3 import encode_multipart_formdata

REQUEST_TIMEOUT_S = 30.0
MIN_POLL_TIMEOUT_S = 1.0  # a poll at the job's bound still gets this long to answer
MAX_POLL_BACKOFF_S = 2.0  # the longest pause between retries of a failing /history poll
WITHDRAW_TIMEOUT_S = 5.0  # per request: a withdrawal must not keep a failed job from returning
LOST_CHECK_INTERVAL_S = 1.0  # how often a wait asks ComfyUI's queue whether it still holds the prompt
MAX_IMAGE_BYTES = 200 * 1024 * 1024
# What loading a model file that is not the model raises in ComfyUI: safetensors on a Git LFS pointer or a web page
# saved in its place (HeaderTooLarge), or on a cut-short download (MetadataIncompleteBuffer); torch.load on the same
# for a .ckpt/.pt file. ComfyUI listed the file, so the prompt passed validation: only the load tells.
DAMAGED_MODEL_ERRORS = ("Error while deserializing header", "HeaderTooLarge", "MetadataIncompleteBuffer",
                        "invalid load key", "PytorchStreamReader failed")
DAMAGED_MODEL_HINT = ("the model file it loads is not a whole model (a Git LFS pointer, a web page or a cut-short "
                      "download in its place): the worker preflight (`{doctor}` on the local target, or "
                      "`python -m goldgate_worker.preflight` inside the image) names the file; rebuild the image "
                      "from models.yaml")
# ComfyUI's loader lists every name under its folder, a symbolic link whose target is gone included (folder_paths
# walks with os.walk), so the prompt validates, and only the load finds nothing: folder_paths.get_full_path_or_raise
# says this. The usual cause is a link into a network volume that is not attached.
MODEL_GONE_HINT = ("ComfyUI listed the model file but cannot open it: a symbolic link in its place whose target is "
                   "gone (a network volume not attached, a model moved), or a file removed since ComfyUI started: "
                   "the worker preflight (`{doctor}` on the local target, or `python -m goldgate_worker.preflight` "
                   "inside the image) names the link; bake the file itself into the image from models.yaml")
# A stack name as goldgate's StackSpec allows one (goldgate/spec.py, _NAME; the worker imports nothing of goldgate):
# only such a STACK goes into a command the operator pastes, any other (a worker started by hand) keeps the placeholder.
_STACK_NAME = re.compile(r"[a-z][a-z0-9-]{1,40}")


def doctor_command(stack: str | None) -> str:
    """The doctor command that checks this worker's image, naming its stack (STACK) when the worker was told it:
    a placeholder left in the advice is one more thing for an operator in an incident to look up."""
    return f"goldgate doctor --stack {stack if stack and _STACK_NAME.fullmatch(stack) else '<stack>'}"


class ComfyError(RuntimeError):
    """ComfyUI answered in a way the worker cannot use; the message says what happened."""


class ComfyUnreachable(ComfyError):
    """No HTTP answer from ComfyUI (connection refused, reset, timed out)."""


class ComfyDown(ComfyUnreachable):
    """ComfyUI refused a connection after it had answered, or its process exited before it ever answered: it is
    gone (crashed, killed), and nothing in the image restarts it. Not retried; the worker asks RunPod to replace
    it."""


class ComfyNotReady(ComfyError):
    """ComfyUI did not come up within the readiness bound."""


class ComfyTimeout(ComfyError):
    """A prompt did not finish within the job bound."""


class ComfyExecutionError(ComfyError):
    """ComfyUI accepted the prompt but a node failed while running it, or the run was interrupted."""


class ComfyGpuFault(ComfyExecutionError):
    """A node failed with a CUDA error other than out-of-memory: such errors are sticky, the process's CUDA
    context stays unusable and every later prompt fails the same way until ComfyUI restarts."""


class ComfyStuck(ComfyError):
    """A prompt the worker gave up on (its wait failed or ran out, or its POST /prompt answer was lost) still runs
    after its withdrawal: a node that does not stop holds this ComfyUI, and every later job would wait behind it.
    The worker asks to be replaced."""


class ComfyLost(ComfyError):
    """ComfyUI no longer knows a prompt it accepted: neither queued, running nor in its history (it restarted and
    lost its queue, or another client deleted the prompt). Its history will never show it: the wait ends at once."""


class ComfyCancelled(ComfyError):
    """The job was stopped (RunPod cancel or timeout) while the worker waited; its prompt was cancelled."""


class _PollFailed(Exception):
    """One /history poll got no usable answer in a way that may pass (no answer, a 5xx); retried."""


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


def process_exited(pid: int) -> bool:
    """Whether process `pid` has ended: gone, or a zombie its parent (start.sh) has not reaped yet."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it exists
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


class ComfyClient:
    def __init__(self, base_url: str, poll_interval_s: float = 0.2, pid: int | None = None,
                 stack: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.poll_interval_s = poll_interval_s
        self.pid = pid  # ComfyUI's process, when this worker's start script launched it
        self.stack = stack  # the worker's stack (STACK), named in the advice of a failed load
        self._answered = False  # ComfyUI has answered a request: a refused connection now means it died

    def _request(self, method: str, path: str, body: Any = None,
                 timeout_s: float = REQUEST_TIMEOUT_S, raw: tuple[bytes, str] | None = None) -> tuple[int, bytes]:
        """`body` is sent as JSON; `raw`, (bytes, Content-Type), as it is."""
        data, content_type = raw if raw is not None else (json.dumps(body).encode() if body is not None else None,
                                                          "application/json")
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": content_type} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                self._answered = True
                body = resp.read(MAX_IMAGE_BYTES + 1)
                # read(n) returns what came before the connection closed, without a word: an image cut short
                # (ComfyUI dying mid-answer, a proxy reset) still starts with a PNG header and would be stored.
                declared = (resp.headers.get("Content-Length") or "").strip()
                if declared.isdigit() and len(body) < min(int(declared), MAX_IMAGE_BYTES + 1):
                    raise ComfyUnreachable(f"ComfyUI's answer to {method} {path} was cut short: {len(body)} of its "
                                           f"{declared} bytes arrived before the connection closed")
                return resp.status, body
        except urllib.error.HTTPError as exc:
            self._answered = True
            try:
                return exc.code, exc.read(1_000_000)
            except (http.client.HTTPException, OSError) as cut:
                # Raised here, it would escape the handler below: a poll that may pass would end the job as an
                # "internal worker error", and a withdrawal (which ignores only ComfyError) would fail with it.
                raise ComfyUnreachable(f"ComfyUI's HTTP {exc.code} answer to {method} {path} broke off: "
                                       f"{cut}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            message = f"cannot reach ComfyUI at {self.base_url} ({method} {path}): {reason}"
            if self._answered and isinstance(reason, ConnectionRefusedError):
                # Nothing listens where ComfyUI answered before (a busy ComfyUI still accepts connections).
                raise ComfyDown(f"ComfyUI stopped answering: {message}; its process has exited (out of memory, "
                                f"a crash; see its log) and nothing restarts it") from None
            raise ComfyUnreachable(message) from None

    def _json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, raw = self._request(method, path, body)
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:  # not JSON, or not UTF-8 text at all (UnicodeDecodeError)
            raise ComfyError(f"ComfyUI {method} {path} answered HTTP {status} with non-JSON: {raw[:200]!r}") from None

    def is_ready(self) -> tuple[bool, str]:
        try:
            status, _ = self._request("GET", "/system_stats")
        except ComfyDown:
            raise
        except ComfyUnreachable as exc:
            return False, str(exc)
        return status == 200, f"HTTP {status}"

    def _pause(self, stop: threading.Event | None, doing: str, seconds: float | None = None) -> None:
        """Sleeps one poll interval (or `seconds`); raises ComfyCancelled as soon as `stop` is set."""
        seconds = self.poll_interval_s if seconds is None else seconds
        if stop is None:
            time.sleep(seconds)
        elif stop.wait(seconds):
            raise ComfyCancelled(f"job stopped while {doing}")

    def wait_ready(self, timeout_s: float, stop: threading.Event | None = None) -> float:
        """Waits until /system_stats answers 200; returns the seconds waited. Tolerates a cold start."""
        start = time.monotonic()
        while True:
            ready, last = self.is_ready()
            if ready:
                return time.monotonic() - start
            if self.pid is not None and process_exited(self.pid):
                # It crashed while starting (no usable GPU, out of memory, a broken install): every job this
                # worker takes would wait out the whole readiness bound for a server that will never answer.
                raise ComfyDown(f"ComfyUI exited before it answered at {self.base_url} (its process {self.pid} "
                                f"is gone; last: {last}): it crashed while starting (see its log) and nothing "
                                f"restarts it")
            if time.monotonic() - start >= timeout_s:
                raise ComfyNotReady(
                    f"ComfyUI at {self.base_url} was not ready after {round(timeout_s, 1):g} s (last: {last}); it may "
                    f"still be loading models (COMFY_READY_TIMEOUT_S bounds this wait, COMFY_JOB_TIMEOUT_S the whole "
                    f"job) or have crashed (see its log)")
            self._pause(stop, "waiting for ComfyUI to start")

    def queue_prompt(self, graph: dict[str, Any], client_id: str, prompt_id: str | None = None) -> str:
        """Queues the graph; returns ComfyUI's prompt id. `prompt_id` names the prompt up front (ComfyUI
        takes it from the body), so a request whose answer is lost can still be withdrawn by that id."""
        payload: dict[str, Any] = {"prompt": graph, "client_id": client_id}
        if prompt_id is not None:
            payload["prompt_id"] = prompt_id
        try:
            status, body = self._json("POST", "/prompt", payload)
        except ComfyUnreachable as exc:
            if prompt_id is None:
                raise
            # ComfyUI may have queued it before the answer was lost.
            if not self.withdraw(prompt_id):
                raise ComfyStuck(f"{exc}; ComfyUI had queued prompt {prompt_id} all the same and was still running it "
                                 f"{WITHDRAW_TIMEOUT_S:g} s after the interrupt (a node that does not stop): every "
                                 f"later job would wait behind it") from None
            raise type(exc)(f"{exc}; prompt {prompt_id} was withdrawn in case ComfyUI had queued it") from None
        if status == 400 and isinstance(body, dict):
            raise PromptRejected(body.get("error"), body.get("node_errors"))
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("prompt_id"), str):
            raise ComfyError(f"ComfyUI POST /prompt answered HTTP {status}: {str(body)[:300]}")
        if body.get("node_errors"):
            # ComfyUI queued the outputs that validate and dropped the rest: the job would come back with
            # fewer images than its workflow saves. Withdraw it and report what failed instead; a prompt that
            # runs on past its withdrawal holds this ComfyUI as after a lost answer or a timed-out wait.
            if not self.withdraw(body["prompt_id"]):
                raise ComfyStuck(f"ComfyUI queued prompt {body['prompt_id']} with outputs that failed validation "
                                 f"and was still running it {WITHDRAW_TIMEOUT_S:g} s after the interrupt (a node "
                                 f"that does not stop): every later job would wait behind it")
            raise PromptRejected({"type": "prompt_outputs_failed_validation", "details": "",
                                  "message": "some outputs failed validation and would not be saved",
                                  "extra_info": {}}, body["node_errors"])
        return body["prompt_id"]

    def wait_for_outputs(self, prompt_id: str, timeout_s: float,
                         stop: threading.Event | None = None) -> list[OutputImage]:
        """Polls /history/{id} until the prompt finishes; returns its saved images. A poll that fails in
        passing (no answer, a 5xx, a 404 before the entry exists) is retried, with a growing pause, until
        `timeout_s`. However else the wait ends (a non-transient answer, the bound, `stop` set), the prompt
        is withdrawn from ComfyUI first: a render nobody waits for holds the GPU and the next job."""
        try:
            entry = self._wait_finished(prompt_id, timeout_s, stop)
        except (ComfyCancelled, ComfyDown):
            self.withdraw(prompt_id)
            raise
        except ComfyError as exc:
            if not self.withdraw(prompt_id):
                raise ComfyStuck(f"{exc}; yet ComfyUI was still running it {WITHDRAW_TIMEOUT_S:g} s after the "
                                 f"interrupt (a node that does not stop): every later job would wait behind "
                                 f"it") from None
            raise
        except BaseException:
            self.withdraw(prompt_id)
            raise
        return self._images(prompt_id, entry)

    def _wait_finished(self, prompt_id: str, timeout_s: float, stop: threading.Event | None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        path = "/history/" + urllib.parse.quote(prompt_id, safe="")
        failures, last_failure = 0, ""
        next_lost_check = time.monotonic()
        while True:
            try:
                entry = self._poll_history(prompt_id, path, max(MIN_POLL_TIMEOUT_S, deadline - time.monotonic()))
                failures = 0
            except _PollFailed as exc:
                entry, failures, last_failure = None, failures + 1, str(exc)
            if entry is not None and self._finished(entry):
                return entry
            if entry is None and not failures and time.monotonic() >= next_lost_check:
                next_lost_check = time.monotonic() + LOST_CHECK_INTERVAL_S
                entry = self._unless_lost(prompt_id, path, deadline)
                if entry is not None:
                    return entry
            left = deadline - time.monotonic()
            if left <= 0:
                failing = (f"; its last {failures} /history polls failed (last: {last_failure})" if failures
                           else "")
                raise ComfyTimeout(f"ComfyUI did not finish prompt {prompt_id} within {round(timeout_s, 1):g} s "
                                   f"(what was left of the job's COMFY_JOB_TIMEOUT_S){failing}; the prompt was "
                                   f"withdrawn from ComfyUI")
            pause = min(self.poll_interval_s * 2 ** failures, MAX_POLL_BACKOFF_S) if failures else self.poll_interval_s
            try:
                self._pause(stop, f"ComfyUI ran prompt {prompt_id}", min(pause, left))
            except ComfyCancelled as exc:
                raise ComfyCancelled(f"{exc}; the prompt was withdrawn from ComfyUI") from None

    def _unless_lost(self, prompt_id: str, path: str, deadline: float) -> dict[str, Any] | None:
        """Raises ComfyLost when ComfyUI's queue does not list the prompt and its history still has no entry for it;
        the finished entry when the prompt finished meanwhile, None while it may still come (listed, or no answer)."""
        if self._in_queue(prompt_id) is not False:
            return None
        # ComfyUI takes a prompt out of its queue and writes its history entry in one step (under one lock): a prompt
        # that left the queue since the last poll has its entry now, unless ComfyUI lost it.
        try:
            entry = self._poll_history(prompt_id, path, max(MIN_POLL_TIMEOUT_S, deadline - time.monotonic()))
        except _PollFailed:
            return None
        if entry is not None:
            return entry if self._finished(entry) else None
        raise ComfyLost(f"ComfyUI lost prompt {prompt_id}: it is neither queued, running nor in its history (ComfyUI "
                        f"restarted and lost its queue, or another client of it deleted the prompt or cleared its "
                        f"history); nothing was saved for this job: resubmit it")

    def _poll_history(self, prompt_id: str, path: str, timeout_s: float) -> dict[str, Any] | None:
        """The prompt's history entry (finished or not: _finished tells), None while there is none; _PollFailed when
        the poll got no usable answer in a way that may pass, ComfyError when the answer will not get better."""
        try:
            status, raw = self._request("GET", path, timeout_s=timeout_s)
        except ComfyDown as exc:
            raise ComfyDown(f"{exc}; prompt {prompt_id} is lost with it") from None
        except ComfyUnreachable as exc:
            raise _PollFailed(str(exc)) from None
        if status >= 500:
            raise _PollFailed(f"GET {path} answered HTTP {status}")
        if status == 404:
            return None  # a front end that answers 404 until the entry exists: still pending
        if status != 200:
            raise ComfyError(f"ComfyUI GET {path} answered HTTP {status}: {raw[:200]!r}; the prompt was "
                             f"withdrawn from ComfyUI")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ComfyError(f"ComfyUI GET {path} answered HTTP 200 with non-JSON: {raw[:200]!r}; the prompt "
                             f"was withdrawn from ComfyUI") from None
        if not isinstance(body, dict):
            raise ComfyError(f"ComfyUI GET {path} answered HTTP 200 with a JSON {type(body).__name__}, not a "
                             f"JSON object; the prompt was withdrawn from ComfyUI")
        entry = body.get(prompt_id)
        return entry if isinstance(entry, dict) else None

    @staticmethod
    def _finished(entry: dict[str, Any]) -> bool:
        status = entry.get("status")
        # Older ComfyUI wrote history entries without a status, only once the prompt was done.
        return not isinstance(status, dict) or bool(status.get("completed")) or status.get("status_str") == "error"

    def _images(self, prompt_id: str, entry: dict[str, Any]) -> list[OutputImage]:
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        if status.get("status_str") == "error":
            detail, gpu_fault = "no detail", False
            for message in status.get("messages") or []:
                if not (isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)):
                    continue
                info = message[1]
                if message[0] == "execution_error":
                    detail = (f"node {info.get('node_id')} ({info.get('node_type')}): "
                              f"{info.get('exception_type')}: {info.get('exception_message')}")
                    text = str(info.get("exception_message"))
                    gpu_fault = "CUDA error:" in text and "out of memory" not in text
                    doctor = doctor_command(self.stack)
                    if any(signature in text for signature in DAMAGED_MODEL_ERRORS):
                        detail = f"{detail}; {DAMAGED_MODEL_HINT.format(doctor=doctor)}"
                    elif text.startswith("Model in folder '") and "' with filename '" in text:
                        detail = f"{detail}; {MODEL_GONE_HINT.format(doctor=doctor)}"
                elif message[0] == "execution_interrupted":
                    raise ComfyExecutionError(
                        f"ComfyUI interrupted prompt {prompt_id} at node {info.get('node_id')} "
                        f"({info.get('node_type')}) before it saved an image: something sent POST /interrupt "
                        f"(another client of this ComfyUI, or a cancelled job); resubmit the job")
            if gpu_fault:
                raise ComfyGpuFault(f"ComfyUI failed while running prompt {prompt_id}: {detail}; a CUDA error "
                                    f"leaves the GPU unusable to this ComfyUI process")
            raise ComfyExecutionError(f"ComfyUI failed while running prompt {prompt_id}: {detail}")
        images = []
        for node_id, output in sorted((entry.get("outputs") or {}).items()):
            for image in (output or {}).get("images") or []:
                if isinstance(image, dict) and image.get("type") == "output" and image.get("filename"):
                    images.append(OutputImage(node_id, str(image["filename"]), str(image.get("subfolder") or ""),
                                              "output"))
        return images

    def withdraw(self, prompt_id: str) -> bool:
        """Deletes the prompt from ComfyUI's queue and interrupts it if it is the one running. Best effort:
        each request is tried on its own, and the job fails with its own clear error either way. False when
        ComfyUI's queue still lists the prompt once WITHDRAW_TIMEOUT_S has passed (True when it cannot say)."""
        # With the id, ComfyUI interrupts only if this prompt is the one running (older builds ignore it).
        for path, body in (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id})):
            try:
                self._request("POST", path, body, timeout_s=WITHDRAW_TIMEOUT_S)
            except ComfyError:
                pass
        # ComfyUI stops an interrupted render at its next step, not at once: wait (bounded) until its queue
        # no longer holds the prompt, so the worker's next job does not start behind it.
        deadline = time.monotonic() + WITHDRAW_TIMEOUT_S
        while self._in_queue(prompt_id) is True:
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.05, self.poll_interval_s))
        return True

    def _in_queue(self, prompt_id: str) -> bool | None:
        """Whether ComfyUI's GET /queue lists the prompt as running or pending; None when it cannot say."""
        try:
            status, raw = self._request("GET", "/queue", timeout_s=WITHDRAW_TIMEOUT_S)
            queue = json.loads(raw) if status == 200 else None
        except (ComfyError, ValueError):
            return None
        if not isinstance(queue, dict) or not all(isinstance(queue.get(k), list)
                                                   for k in ("queue_running", "queue_pending")):
            return None  # not ComfyUI's answer: it always lists both
        items = [*queue["queue_running"], *queue["queue_pending"]]
        return any(isinstance(item, list) and len(item) > 1 and item[1] == prompt_id for item in items)

    def upload_image(self, name: str, data: bytes, content_type: str) -> str:
        """Puts an input image into ComfyUI's input folder with its own POST /upload/image (replacing a file of that
        name: a job's run again sends the same name); returns the name a LoadImage node loads it by."""
        body, form_type = encode_multipart_formdata({"image": (name, data, content_type), "type": "input",
                                                     "overwrite": "true"})
        status, raw = self._request("POST", "/upload/image", raw=(body, form_type))
        try:
            answer = json.loads(raw) if status == 200 else None
        except ValueError:
            answer = None
        stored = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(stored, str) or not stored:
            raise ComfyError(f"ComfyUI POST /upload/image of {name} answered HTTP {status}: {raw[:200]!r}")
        subfolder = answer.get("subfolder")
        return f"{subfolder}/{stored}" if isinstance(subfolder, str) and subfolder else stored

    def fetch_image(self, image: OutputImage) -> bytes:
        query = urllib.parse.urlencode({"filename": image.filename, "subfolder": image.subfolder, "type": image.type})
        status, data = self._request("GET", "/view?" + query)
        if status != 200:
            raise ComfyError(f"ComfyUI GET /view for {image.filename} answered HTTP {status}")
        if len(data) > MAX_IMAGE_BYTES:
            raise ComfyError(f"ComfyUI output {image.filename} is larger than {MAX_IMAGE_BYTES} bytes")
        return data
