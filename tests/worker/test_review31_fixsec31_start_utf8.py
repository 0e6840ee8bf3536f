"""Every line start.sh writes is valid UTF-8 and valid JSON on schema v1 whatever bytes STACK, WORKFLOW_VERSION and
WORKER_IMAGE_TAG hold, in the C locale the image runs in (its Dockerfile sets no LANG).

Before: the values were cut with ${value:0:64}, which counts bytes in the C locale and cut a two-byte character in
half, and a byte that is no UTF-8 went out as it was: the line was no UTF-8, and an operator's pipeline that reads
the worker's log as JSON dropped or choked on exactly the lines that say why a worker never took a job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from worker_harness import REPO, WORKER_DIR, validate_log_lines

STAND_IN = r"""#!/usr/bin/env bash
case "$*" in
  *main.py*) echo 'ComfyUI starting' ;;
  *.sdk_logs*) exec {python} "$@" ;;
  *.preflight*) exit 1 ;;
esac
exit 3
"""
# 1 + 70 two-byte characters: byte 64 is the middle of the 32nd; a byte 0xff is never UTF-8.
STACK = "s" + "é" * 70
VERSION = b"2026.11.0-\xff\xfe-rc".decode("utf-8", "surrogateescape")   # os.environ's form of those bytes
TAG = "repo/wörker:" + "ü" * 300


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_start_sh_lines_are_utf8_json_whatever_bytes_the_context_holds(tmp_path: Path, locale: str) -> None:
    python = tmp_path / "python"
    python.write_text(STAND_IN.replace("{python}", sys.executable))
    python.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "LC_ALL": locale, "PYTHON": str(python), "COMFY_DIR": str(tmp_path),
           "APP_DIR": str(tmp_path), "WORKER_PKG": "images.worker", "PYTHONPATH": str(REPO),
           "STACK": STACK, "WORKFLOW_VERSION": VERSION, "WORKER_IMAGE_TAG": TAG}
    done = subprocess.run(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path, capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    own = validate_log_lines(done.stderr.decode("utf-8"))   # strict: a byte that is no UTF-8 fails here
    relayed = validate_log_lines(done.stdout.decode("utf-8"))
    assert [line["event"] for line in own] == ["worker.start.comfyui_launched", "worker.start.preflight_failed"]
    assert [line["message"] for line in relayed] == ["ComfyUI starting"]
    for line in own + relayed:
        # Cut to the schema's length in characters, never inside one; what is no UTF-8 shows as U+FFFD.
        assert line["stack"] == STACK[:64], line
        assert line["workflow_version"] == "2026.11.0-\ufffd\ufffd-rc", line
        assert line["worker_image_tag"] == TAG[:256], line
