"""No part of a secret reaches a worker log line when a long text is cut to fit it: each text is masked first,
then cut (a cut through a secret would leave its first or last characters, which the mask no longer matches)."""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Iterator

import pytest
from worker_harness import SECRET_KEY, job, validate_log_lines

from images.worker import sdk_logs
from images.worker.handler import run_job
from images.worker.logs import WorkerLog

# Nothing but copies of the secret: one of them straddles any cut, wherever it falls.
FLOOD = " ".join([SECRET_KEY] * 5000)
MASKED_CHARS = set("[redacted] .\n…")


def _leftovers(text: str, marker: str = "") -> set[str]:
    """The characters after `marker` that are not part of a mask, a space or a cut mark."""
    assert marker in text, text[:300]
    return set(text.split(marker, 1)[1] if marker else text) - MASKED_CHARS


def test_a_failed_jobs_error_field_keeps_no_piece_of_a_secret(comfy, models_dir, runtime_factory, logs,
                                                              monkeypatch):
    # A custom node whose exception quotes its environment again and again: the job_failed line carries the
    # exception text twice, as its message and as its error; neither may end in the first letters of the key.
    def verbose(*args, **kwargs):
        raise RuntimeError(FLOOD)

    monkeypatch.setattr(comfy.backend, "render", verbose)
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert out["error"].startswith("ComfyUI failed while running prompt"), out["error"][:200]
    (failed,) = [line for line in logs.lines() if line["event"] == "job_failed"]
    assert _leftovers(failed["message"], "RuntimeError: ") == set()
    assert _leftovers(failed["error"]["message"], "RuntimeError: ") == set(), failed["error"]["message"][-60:]
    assert SECRET_KEY[:4] not in logs.getvalue()


@contextlib.contextmanager
def _routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """sdk_logs.install over in-memory stdout/stderr; yields what goes to stderr (crash lines)."""
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.delenv("RUNPOD_LOG_LEVEL", raising=False)
    monkeypatch.delenv("RUNPOD_DEBUG_LEVEL", raising=False)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    undo = sdk_logs.install(WorkerLog(secrets=(SECRET_KEY,), stack="local"))
    try:
        yield err
    finally:
        undo()
        sys.stdout, sys.stderr = saved


def test_a_crash_traceback_cut_to_its_tail_keeps_no_piece_of_a_secret(monkeypatch):
    def crash() -> None:
        raise RuntimeError(FLOOD + " " + "." * 17)  # the tail kept then starts inside a copy of the secret

    with _routed(monkeypatch) as err:
        thread = threading.Thread(target=crash, name="renderer")
        thread.start()
        thread.join()
        try:
            crash()
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    lines = {line["event"]: line for line in validate_log_lines(err.getvalue())}
    for event in ("thread_crashed", "worker_crashed"):
        traceback_text = lines[event]["data"]["traceback"]
        assert len(traceback_text) <= sdk_logs.MAX_TRACEBACK_CHARS + 4
        assert _leftovers(traceback_text, "...\n") == set(), (event, traceback_text[:60])
        assert _leftovers(lines[event]["error"]["message"]) == set(), (event, lines[event]["error"]["message"][-60:])
    assert SECRET_KEY[-4:] not in err.getvalue() and SECRET_KEY[:4] not in err.getvalue()
