"""`goldgate dr-restore` and `goldgate up` of one stack at once (the runbook's restore, and a teammate or a script
bringing the stack back meanwhile). The restore checked that no host ran, then replaced the database: an `up` in
between started a host on the old database, and the restore then swapped the file under it (removing its journal).
The stack came up serving the old database, which `status` did not say, and wrote to a file no longer the stack's.
The restore now holds the stack as an `up` does: the `up` waits for it, then starts on the restored database."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE, ApiClient
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.ops import dr

BACKED_UP, WRITTEN_AFTER = 300, 40


def _jobs_written_after_the_backup(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TEMP TABLE later AS SELECT * FROM jobs LIMIT ?", (WRITTEN_AFTER,))
        conn.execute("UPDATE later SET id = 'later-' || id")
        conn.execute("INSERT INTO jobs SELECT * FROM later")
        conn.execute("INSERT INTO job_metrics (job_id, stack, status, runpod_queue_duration_ms, "
                     "runpod_run_duration_ms, e2e_ms, worker_image_tag, workflow_version, gpu_type, cost_estimate_usd, "
                     "created_at) SELECT id, stack, status, runpod_queue_duration_ms, runpod_run_duration_ms, e2e_ms, "
                     "worker_image_tag, workflow_version, gpu_type, cost_estimate_usd, created_at FROM later")
    conn.close()


def test_an_up_started_during_a_restore_waits_for_it_and_serves_the_restored_database(
        tmp_path: Path, stack_db, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    platform = LocalPlatform(home)
    d = StackDir(home, "staging")
    db = stack_db(platform.db_path("staging"), jobs=BACKED_UP, fail_every=30)
    d.pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    assert main(["dr-drill", "staging", "--home", str(home)]) == 0
    backup = next((home / "backups" / "staging").glob("*.sqlite"))
    _jobs_written_after_the_backup(db)  # what the restore takes back

    restoring, up_said = threading.Event(), threading.Event()
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if "waiting for" in line or ": up at " in line:
            up_said.set()

    keep_old_database = dr._keep_old_database

    def at_the_swap(target: Path) -> Path:
        # The dangerous point: the backup is restored beside the database, which is about to be replaced. The
        # restore goes on once the `up` run meanwhile has either started the stack or is waiting for the restore.
        restoring.set()
        assert up_said.wait(120), f"the `up` neither started the stack nor waited: {lines}"
        return keep_old_database(target)

    monkeypatch.setattr(dr, "_keep_old_database", at_the_swap)
    codes: list[int] = []
    restore = threading.Thread(target=lambda: codes.append(
        main(["dr-restore", "staging", "--backup", str(backup), "--home", str(home)])), daemon=True)
    try:
        restore.start()
        assert restoring.wait(60), "the restore never reached its swap"
        platform.up("staging", progress, timeout_s=120)
        restore.join(120)
        assert codes == [0], capsys.readouterr().err
        api = ApiClient(platform, "staging")
        try:  # the stack serves the database restored, not the one the restore replaced
            assert api.call("GET", "/api/metrics")["overall"]["count"] == BACKED_UP
            # and writes to it: a job created now is one the stack then knows
            job = api.call("POST", "/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                                "inputs": {"prompt": "a lighthouse at dusk"}})
            assert api.call("GET", f"/api/status/{job['job_id']}")["job_id"] == job["job_id"]
            conn = sqlite3.connect(db)
            try:
                assert conn.execute("SELECT count(*) FROM jobs WHERE id = ?", (job["job_id"],)).fetchone() == (1,)
                # every job the backup held, and the new one
                assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (BACKED_UP + 1,)
            finally:
                conn.close()
        finally:
            api.close()
        assert any("waiting for `goldgate dr-restore staging`" in line for line in lines), lines
    finally:
        platform.down("staging")


def test_a_restore_while_an_up_holds_the_stack_is_refused_and_replaces_nothing(tmp_path: Path, stack_db,
                                                                              capsys: pytest.CaptureFixture[str]
                                                                              ) -> None:
    home = tmp_path / "home"
    platform = LocalPlatform(home)
    db = stack_db(platform.db_path("staging"), jobs=BACKED_UP, fail_every=30)
    assert main(["dr-drill", "staging", "--home", str(home)]) == 0
    backup = next((home / "backups" / "staging").glob("*.sqlite"))
    _jobs_written_after_the_backup(db)
    before = db.read_bytes()
    capsys.readouterr()
    with StackDir(home, "staging").starting(5) as ours:  # as a `goldgate up` holds it while the stack starts
        assert ours
        assert main(["dr-restore", "staging", "--backup", str(backup), "--home", str(home)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("goldgate: error: `goldgate up staging` (pid ") and "nothing was restored" in err, err
    assert "\n" not in err and "Traceback" not in err
    assert db.read_bytes() == before
    assert not list(db.parent.glob("db.sqlite.*")), "the refused restore left a file beside the database"
