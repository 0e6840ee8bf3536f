"""The local restore procedure of docs/D1_DISASTER_RECOVERY.md after a mistake, run as the document writes it: each
command of its "### Local" block through the real CLI, in a temp home. The jobs were deleted by mistake, and a
drill ran after that (the scheduled one): the procedure lists the backups, picks the newest one taken before the
damage (the newest that holds the jobs), and brings them back. Before, it opened with a drill, which backed up the
damaged database and pruned the only backup that held the jobs."""

from __future__ import annotations

import re
import shlex
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from goldgate.cli import main
from goldgate.commands.local import ApiClient
from goldgate.local.platform import LocalPlatform
from goldgate.ops.backup import take_backup
from goldgate.ops.dr import run_local_drill

DOC = Path(__file__).resolve().parents[2] / "docs" / "D1_DISASTER_RECOVERY.md"


def _local_procedure() -> list[list[str]]:
    """The commands of the first ```sh block under "### Local", comments dropped."""
    section = DOC.read_text(encoding="utf-8").split("### Local", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.split("#", 1)[0].strip()]


def _pick(listing: str) -> str:
    """What the doc tells the reader to do with `--list`: the newest backup holding the jobs (the most of them)."""
    rows = [(line.strip().split(":", 1)[0], int(re.search(r"jobs=(\d+)", line).group(1)))
            for line in listing.splitlines() if "jobs=" in line]
    most = max(jobs for _, jobs in rows)
    return next(path for path, jobs in rows if jobs == most)  # newest first


def test_the_documented_local_restore_after_a_mistake_brings_the_deleted_jobs_back(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    platform = LocalPlatform(home)
    db = stack_db(platform.db_path("staging"), jobs=300, fail_every=30)
    then = datetime.now(UTC) - timedelta(days=122)  # the last good backup, older than the 90 days kept
    take_backup(db, home / "backups" / "staging", "staging", clock=lambda: then)
    conn = sqlite3.connect(db)
    with conn:
        for table in ("job_metrics", "webhook_deliveries", "jobs"):
            conn.execute(f"DELETE FROM {table}")  # the mistake
    conn.close()
    assert run_local_drill("staging", db, home, backup_retention_days=90).passed  # the scheduled drill ran since
    steps = _local_procedure()
    assert [s[:2] for s in steps][-3:] == [["goldgate", "down"], ["goldgate", "dr-restore"], ["goldgate", "up"]]
    picked = None
    try:
        for argv in steps:
            args = [*argv[1:], "--home", str(home)]
            if "--backup" in args:  # without a listing to pick from, a reader takes the newest backup
                newest = max((home / "backups" / "staging").glob("*.sqlite"))
                args[args.index("--backup") + 1] = picked or str(newest)
            assert main(args) == 0, argv
            out = capsys.readouterr().out
            if "--list" in argv:
                picked = _pick(out)
        api = ApiClient(platform, "staging")  # the stack serves the deleted jobs again
        try:
            assert api.call("GET", "/api/metrics")["overall"]["count"] == 300
        finally:
            api.close()
    finally:
        platform.down("staging")
