"""A local worker that cannot start says why on stderr (its worker log) without the credentials the emulator gave it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store

REPO = Path(__file__).resolve().parents[2]
R2_SECRET = "r2secret-4b9d0e77a1c35f62"
WORKER_KEY = "rp-worker-key-1f0e9d8c7b"


def _snapshot(tmp_path: Path, module: str, line: str) -> Path:
    """A worker image whose `module` (a file under worker/) ends with `line`."""
    source = tmp_path / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / module).open("a", encoding="utf-8") as f:
        f.write(f"\n{line}\n")
    return image_store.resolve(image_store.build_local_image(source, tmp_path / "home"), tmp_path / "home")


def _run(snapshot: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "GOLDGATE_LIFELINE"))}
    # What the fleet gives every worker: the stack's R2 keys and its own RunPod worker key.
    env.update({"COMFY_EMULATOR_STARTUP_S": "0", "STACK": "staging", "R2_ACCESS_KEY_ID": "r2keyid-0a1b2c3d",
                "R2_SECRET_ACCESS_KEY": R2_SECRET, "RUNPOD_AI_API_KEY": WORKER_KEY})
    return subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot),
                           "--", "--test_input", json.dumps({"input": {}})],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_an_import_failure_quoting_a_setting_does_not_print_the_r2_secret(tmp_path: Path) -> None:
    # A module that checks a setting at import and names the value it refused (a ValueError from int(), a
    # validation message): the refusal quotes the error and its traceback, which the worker log keeps.
    line = ("raise ValueError('R2 secret key %r is not 40 characters; check R2_SECRET_ACCESS_KEY' "
            "% __import__('os').environ['R2_SECRET_ACCESS_KEY'])")
    done = _run(_snapshot(tmp_path, "storage.py", line))
    assert done.returncode == 4, done.stderr
    failed = [json.loads(raw) for raw in done.stderr.splitlines() if "local_worker_import_failed" in raw]
    assert len(failed) == 1, done.stderr
    assert "is not 40 characters" in failed[0]["message"]  # the cause is still there, its value masked
    output = done.stdout + done.stderr
    assert R2_SECRET not in output
    assert WORKER_KEY not in output
