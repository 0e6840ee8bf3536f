"""`goldgate status` reads the local stacks only. Asked for the cloud (`--target cloud`, or GOLDGATE_TARGET=cloud as
every other `--target` command takes it) it said "unrecognized arguments", or, under GOLDGATE_TARGET=cloud, printed
the local stacks as if they were the cloud's. It now refuses in one line naming what reads a cloud stack: the cloud
checklist (the endpoint's image against the pin, rollout, workers, /health) and RunPod's console for worker logs.
`--target local` is the status it always was. Run as the CLI, against a scratch home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _status(tmp_path: Path, *args: str, target: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GOLDGATE_TARGET", "GOLDGATE_HOME")}
    if target is not None:
        env["GOLDGATE_TARGET"] = target
    return subprocess.run([sys.executable, "-m", "goldgate.cli", "status", *args, "--home", str(tmp_path / "home")],
                          env=env, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


def test_status_of_a_cloud_stack_is_refused_naming_what_reads_it(tmp_path: Path) -> None:
    done = _status(tmp_path, "prod", "--target", "cloud")
    assert done.returncode == 1 and done.stdout == "", done.stderr
    said = done.stderr.strip()
    assert "\n" not in said and "Traceback" not in said, said
    assert "`goldgate checklist prod --target cloud` reads its endpoint" in said, said
    assert "RunPod's console holds its worker logs" in said, said


def test_goldgate_target_cloud_gets_the_refusal_not_the_local_stacks(tmp_path: Path) -> None:
    done = _status(tmp_path, target="cloud")
    assert done.returncode == 1 and done.stdout == "", done.stdout   # no local stack shown as the cloud's
    assert "`goldgate checklist <stack> --target cloud`" in done.stderr, done.stderr
    assert "--target local (or unset GOLDGATE_TARGET)" in done.stderr, done.stderr

    done = _status(tmp_path, "--target", "local", target="cloud")
    assert done.returncode == 0, done.stderr
    assert "staging: down" in done.stdout and "prod: down" in done.stdout, done.stdout
