"""A local STAGING with jobs in its database that no host may be running, and `goldgate stuck` read back: for the
tests of what `up`, `status` and `stuck` say of jobs a host left unsettled."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from processes import kill_everything_naming
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from service.jobs import iso_ms

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, runpod_job_id, "
        "created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) "
        "VALUES (?, 'staging', 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', '{}', ?, 'queued', ?, ?, ?, ?, 3600000, 10000)")


def insert_queued_job(db: Path, job_id: str, runpod_job_id: str | None, created_s: float) -> None:
    """A queued STAGING job (a 10 s run timeout) in the service database at `db`, created at `created_s` (epoch
    seconds); `runpod_job_id` None: its service never recorded what RunPod answered."""
    with sqlite3.connect(db) as conn:
        conn.execute(_JOB, (job_id, job_id, runpod_job_id, iso_ms(created_s), int(created_s * 1000),
                            iso_ms(created_s)))
    conn.close()


def stuck(home: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict | str]:
    """`goldgate stuck staging --no-runpod [extra]`: its exit code and its output (parsed, with --json)."""
    capsys.readouterr()
    code = main(["stuck", "staging", "--home", str(home), "--no-runpod", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if "--json" in extra else out


@contextmanager
def own_home(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/home, made; every process that names it (hosts, workers) is gone when the block ends."""
    home = tmp_path / "home"
    home.mkdir()
    try:
        yield home
    finally:
        kill_everything_naming(str(home))


def up_staging(home: Path) -> LocalPlatform:
    """STAGING up over the shipped stacks, pinned to the local worker image built from the checkout."""
    platform = LocalPlatform(home, stacks_file(home))
    StackDir(home, "staging").pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up("staging", timeout_s=90)
    return platform


def worker_pids(home: Path) -> list[int]:
    """The pids of the local workers a stack under `home` runs (their command line names the home)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "goldgate.local.worker_process" in cmdline and str(home) in cmdline:
            pids.append(int(entry.name))
    return pids


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    """`sig` to each of `pids`, those gone skipped (SIGSTOP to hold a worker mid-job, SIGCONT to let it go)."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
