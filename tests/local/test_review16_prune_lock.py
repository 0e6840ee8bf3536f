"""`goldgate prune` and a local `goldgate dr-drill` take the stack's prune lock, which the stack host's scheduled
retention takes too: one prune (or drill export) of a stack's database at a time, so neither counts rows the other is
deleting, and a refusal names the holder and changes nothing. A dry run counts only, and goes ahead."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from goldgate.local.retention_cron import pruning
from goldgate.local.state import StackDir
from goldgate.migrations import apply_sqlite
from service.jobs import iso_ms

STACK = "staging"
DAY_S = 86_400


def _goldgate(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOLDGATE_HOME": str(home)}
    env.pop("GOLDGATE_TARGET", None)
    return subprocess.run([sys.executable, "-m", "goldgate.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def _stack_with_an_old_job(home: Path) -> Path:
    db = StackDir(home, STACK).db_path
    db.parent.mkdir(parents=True, exist_ok=True)
    apply_sqlite(db)
    now = time.time()
    with sqlite3.connect(db) as conn:
        for job, status, age_s in (("old-job", "completed", 40 * DAY_S), ("new-job", "queued", 0)):
            at = iso_ms(now - age_s)
            conn.execute("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                         "created_at, created_at_ms, updated_at, finished_at) VALUES (?, ?, 'sdxl-txt2img', "
                         "'sdxl-txt2img@1.0.0', '{}', 't', ?, ?, ?, ?, ?)",
                         (job, STACK, status, at, int((now - age_s) * 1000), at,
                          at if status == "completed" else None))
    return db


def _jobs(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM jobs")}


def test_a_prune_while_the_hosts_retention_prunes_is_refused_naming_it_and_deletes_nothing(home: Path) -> None:
    db = _stack_with_an_old_job(home)
    with pruning(StackDir(home, STACK), "the host of staging") as holder:
        assert holder is None
        refused = _goldgate(home, "prune", STACK, "--keep-days", "30")
        counted = _goldgate(home, "prune", STACK, "--keep-days", "30", "--dry-run")
        drill = _goldgate(home, "dr-drill", STACK)

    assert refused.returncode != 0 and "the host of staging" in refused.stderr, refused.stderr
    assert "nothing was pruned" in refused.stderr
    assert counted.returncode == 0, counted.stderr
    assert drill.returncode != 0 and "the host of staging" in drill.stderr and "no drill was run" in drill.stderr
    assert _jobs(db) == {"old-job", "new-job"}

    done = _goldgate(home, "prune", STACK, "--keep-days", "30")  # the holder is gone: the prune goes ahead
    assert done.returncode == 0, done.stderr
    assert _jobs(db) == {"new-job"}
