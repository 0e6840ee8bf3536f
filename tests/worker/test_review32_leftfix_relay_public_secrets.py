"""The ComfyUI relay (sdk_logs.relay_comfyui_output) holds back the end of a read that may start a secret, so it needs
the values its logger masks. It read them through `log._secrets`, a private attribute of WorkerLog: a change inside
the logger (another name, secrets kept another way) would break the relay's masking with no test of the logger's own
failing. WorkerLog now says which values it masks (`secrets`), and the relay asks it that."""

from __future__ import annotations

import ast
import io
import json
import os
import sys
from pathlib import Path

from images.worker import sdk_logs
from images.worker.logs import WorkerLog

SECRET = "hf_3b1f0c9a77e04b1f6d2e"


def test_a_logger_says_which_values_it_masks_and_its_bound_copies_mask_the_same() -> None:
    log = WorkerLog(io.StringIO(), secrets=(SECRET, "", "r2-key-90ab12cd"), stack="staging")
    assert log.secrets == (SECRET, "r2-key-90ab12cd")            # an empty value masks nothing, so it is no secret
    assert log.bind(job_id="j1").secrets == log.secrets
    assert log.to_stream(io.StringIO()).secrets == log.secrets


def test_the_relay_reads_no_private_attribute_of_its_logger() -> None:
    tree = ast.parse(Path(sdk_logs.__file__).read_text(encoding="utf-8"))
    private = sorted({f"{node.value.id}.{node.attr}" for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                      and node.value.id in ("log", "err_log")
                      and node.attr.startswith("_") and not node.attr.startswith("__")})
    assert private == [], private


def test_the_relay_masks_with_a_logger_that_shows_its_secrets_only_through_the_public_surface() -> None:
    # The logger handed to the relay exposes its secrets only through `secrets`: what the relay may rely on.
    class PublicOnly(WorkerLog):
        def __getattribute__(self, name: str):
            if name == "_secrets" and not _inside_logs_module():
                raise AttributeError("_secrets is WorkerLog's own")
            return super().__getattribute__(name)

    out = io.StringIO()
    read, write = os.pipe()
    os.write(write, f"token {SECRET} loaded\n".encode())
    os.close(write)
    try:
        sdk_logs.relay_comfyui_output(read, PublicOnly(out, secrets=(SECRET,)))
    finally:
        os.close(read)
    messages = [json.loads(line)["message"] for line in out.getvalue().splitlines()]
    assert messages == ["token [redacted] loaded"], messages


def _inside_logs_module() -> bool:
    """Whether the attribute is asked for by images/worker/logs.py itself (the logger's own code)."""
    frame = sys._getframe(2)
    return frame.f_code.co_filename.endswith(os.path.join("images", "worker", "logs.py"))
