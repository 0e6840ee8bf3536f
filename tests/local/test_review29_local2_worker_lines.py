"""Review 29 (local2): the orchestrator's `local_worker_*` lines of a local worker named no `workflow_version`, so a
filter on the stack's release version (docs/LOG_EVENTS.md: on the orchestrator's lines it is the stacks file's
`workflow_version`) missed a worker that refused to start. They now carry the WORKFLOW_VERSION the fleet gives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store

REPO = Path(__file__).resolve().parents[2]
VERSION = "2026.11.7"


def _run(snapshot: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "GOLDGATE_LIFELINE"))}
    base.update({"COMFY_EMULATOR_STARTUP_S": "0", "STACK": "staging", "WORKFLOW_VERSION": VERSION,
                 "WORKER_IMAGE_TAG": "local/worker@sha256:" + "a" * 64, **env})
    return subprocess.run([sys.executable, "-m", "goldgate.local.worker_process", "--snapshot", str(snapshot),
                           "--", "--test_input", json.dumps({"input": {}})],
                          cwd=REPO, env=base, capture_output=True, text=True, timeout=120, check=False)


def _lines(text: str, prefix: str) -> list[dict]:
    return [line for raw in text.splitlines() if raw.startswith("{")
            for line in [json.loads(raw)] if str(line.get("event", "")).startswith(prefix)]


def test_a_worker_whose_preflight_fails_names_the_stacks_release_version(tmp_path: Path) -> None:
    snapshot = image_store.resolve(image_store.build_local_image(WORKER_SOURCE, tmp_path / "home"), tmp_path / "home")
    for model in (snapshot / "models" / "checkpoints").iterdir():
        model.unlink()   # the runbook's "No checkpoint models appear to be available"
    done = _run(snapshot)
    assert done.returncode == 3, done.stderr
    ours = _lines(done.stdout + done.stderr, "local_worker_")
    assert sorted(line["event"] for line in ours) == ["local_worker_preflight_failed", "local_worker_stopped"], ours
    assert all(line["component"] == "orchestrator" and line.get("workflow_version") == VERSION for line in ours), ours


def test_a_refused_setting_names_it_too(tmp_path: Path) -> None:
    snapshot = image_store.resolve(image_store.build_local_image(WORKER_SOURCE, tmp_path / "home"), tmp_path / "home")
    done = _run(snapshot, COMFY_EMULATOR_STARTUP_S="soon")
    assert done.returncode == 2, done.stderr
    refused = _lines(done.stderr, "local_worker_refused")
    assert len(refused) == 1 and refused[0].get("workflow_version") == VERSION, done.stderr
