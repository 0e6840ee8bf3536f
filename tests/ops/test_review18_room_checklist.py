"""The checklist's `database_room` line: a database filling up is seen before the first `database.full`.

Cloud: the stack's D1 size (the REST API's `file_size`, from the loopback stand-in, whose size is its SQLite
image's plus its documented `size_padding` hook) against D1's 10 GB cap: a warning from 80 %, a failure from
95 %, with the figure, the share and what to do. Local: the free space of the filesystem holding the stack's
SQLite file (only `shutil.disk_usage`'s figures are replaced, where a test needs a full disk). A size that
cannot be read is n/a with its reason, never a traceback; a warning shows and fails nothing."""

from __future__ import annotations

import json
import sqlite3
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_checklist_cloud import CF_TOKEN, RP_KEY, Cloud, cloud, seed_sql, seeded_image  # noqa: F401 -- the cloud fixtures

from goldgate.cli import main
from goldgate.ops import checklist, checklist_facts
from goldgate.ops.checklist_facts import Facts

pytestmark = pytest.mark.usefixtures("scan_once")  # checklist runs scan service/ once (conftest.py)

GIB, MIB = 1024 ** 3, 1024 ** 2
Usage = namedtuple("Usage", "total used free")


# -- cloud ---------------------------------------------------------------------------------------

def test_the_cloud_line_passes_warns_and_fails_as_d1_fills_toward_its_cap(cloud: Cloud) -> None:  # noqa: F811
    uuid = cloud.database_id
    small = cloud.results()["database_room"]
    assert small.status == checklist.PASS, small.evidence
    assert small.evidence.startswith(f"D1 goldgate-staging ({uuid}) holds ")
    assert "MB of D1's 10.00 GB cap (0.0%)" in small.evidence

    cloud.standin.backend.size_padding[uuid] = 8_200_000_000
    warned = cloud.results()["database_room"]
    assert warned.status == checklist.WARN, warned.evidence
    assert "holds 8.20 GB of D1's 10.00 GB cap (82.0%), past 80%" in warned.evidence
    assert f"`goldgate prune staging --keep-days 30 --target cloud --database-id {uuid}`" in warned.evidence
    assert "set database.retention in stacks/Pulumi.staging.yaml" in warned.evidence
    assert 'docs/RUNBOOK.md, "The database is full"' in warned.evidence

    cloud.standin.backend.size_padding[uuid] = 9_600_000_000
    full = cloud.results()["database_room"]
    assert full.status == checklist.FAIL, full.evidence
    assert "holds 9.60 GB of D1's 10.00 GB cap (96.0%), past 95%" in full.evidence
    assert "503 storage_full" in full.evidence and f"--database-id {uuid}" in full.evidence


def test_a_stack_that_declares_retention_is_told_to_keep_fewer_days(cloud: Cloud) -> None:  # noqa: F811
    prod = next(d.uuid for d in cloud.d1.list_databases() if d.name == "goldgate-prod")
    cloud.standin.backend.size_padding[prod] = 8_500_000_000
    line = cloud.results("prod")["database_room"]
    assert line.status == checklist.WARN, line.evidence
    # keep_days is already storage.result_ttl_days (30): the loader refuses fewer (test_review18_rev_room_advice.py)
    assert "database.retention keeps 30 days: set metrics_keep_days" in line.evidence
    assert "lower keep_days" not in line.evidence
    assert "`pulumi up --stack prod`" in line.evidence


def test_a_d1_size_that_is_no_size_is_na_with_its_reason(cloud: Cloud) -> None:  # noqa: F811
    # A negative file_size (what the padding hook answers once it outweighs the real bytes) is no size.
    cloud.standin.backend.size_padding[cloud.database_id] = -10 ** 12
    results = cloud.results()
    line = results["database_room"]
    assert line.status == checklist.NA, line.evidence
    assert line.evidence.startswith("the database's size was not read: D1 size: D1 described database ")
    assert "with file_size '-" in line.evidence and "not its size in bytes" in line.evidence
    assert results["db_migrated"].status == checklist.PASS  # the other D1 lines still read the database


def test_cli_a_warning_shows_and_counts_but_the_stack_stays_ready(cloud: Cloud, capsys,  # noqa: F811
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)
    cloud.standin.backend.size_padding[cloud.database_id] = 8_800_000_000
    argv = cloud.cli("checklist", "staging", "--reports-dir", str(cloud.reports_dir), "--logs-dir",
                     str(cloud.logs_dir))
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True and data["counts"]["warn"] == 1 and data["counts"]["fail"] == 0
    assert {c["id"] for c in data["checks"] if c["status"] == "warn"} == {"database_room"}
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "[WARN] The database has room to grow" in text and "(88.0%), past 80%" in text
    assert "staging: READY (" in text and " 1 warn, 0 fail," in text


# -- local ---------------------------------------------------------------------------------------

def _local_line(home: Path, capsys) -> dict:
    main(["checklist", "staging", "--home", str(home), "--offline", "--json"])
    return next(c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] == "database_room")


def _database(home: Path, mib: int) -> Path:
    """A real SQLite file of about `mib` MiB where the stack keeps its database."""
    path = home / "stacks" / "staging" / "db.sqlite"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE blobs (b BLOB)")
        conn.executemany("INSERT INTO blobs VALUES (?)", [(bytes(MIB),)] * mib)
    conn.close()
    return path


def _disk(monkeypatch, db: Path, *, free: int, total: int) -> None:
    """The filesystem under the stack's directory reports these figures; every other path its own."""
    real = checklist_facts.shutil.disk_usage

    def usage(path):
        if Path(path) == db.parent:
            return Usage(total, total - free, free)
        return real(path)

    monkeypatch.setattr(checklist_facts.shutil, "disk_usage", usage)


def test_the_local_line_names_the_path_and_the_real_figures(tmp_path, capsys) -> None:
    db = _database(tmp_path / "home", 3)
    line = _local_line(tmp_path / "home", capsys)
    total = checklist_facts.shutil.disk_usage(db.parent).total
    assert f"free of {total / GIB:.1f} GiB (" in line["evidence"], line
    assert f"on the filesystem holding {db} (3 MiB with its WAL)" in line["evidence"], line
    assert line["status"] in (checklist.PASS, checklist.WARN, checklist.FAIL)


@pytest.mark.parametrize(("free", "total", "status", "said"), [
    (100 * MIB, 50 * GIB, "fail", "100 MiB free of 50.0 GiB (0.2%) on the filesystem holding"),
    (700 * MIB, 50 * GIB, "warn", "700 MiB free of 50.0 GiB (1.4%)"),
    (5 * GIB, 100 * GIB, "warn", "5.0 GiB free of 100.0 GiB (5.0%)"),
    (15 * GIB, 500 * GIB, "pass", "15.0 GiB free of 500.0 GiB (3.0%)"),
    (40 * GIB, 100 * GIB, "pass", "40.0 GiB free of 100.0 GiB (40.0%)"),
])
def test_the_local_line_judges_the_room_left_on_the_databases_disk(tmp_path, capsys, monkeypatch, free, total,
                                                                  status, said) -> None:
    db = _database(tmp_path / "home", 1)
    _disk(monkeypatch, db, free=free, total=total)
    line = _local_line(tmp_path / "home", capsys)
    assert line["status"] == status and said in line["evidence"], line
    if status != "pass":
        assert "SQLite refuses every write when the disk fills" in line["evidence"]
        assert f"`du -sh {db.parent}/*`" in line["evidence"]
        assert "`goldgate prune staging --keep-days 30`" in line["evidence"]
        assert 'docs/RUNBOOK.md, "The database is full"' in line["evidence"]


def test_before_the_first_start_the_disk_that_will_hold_the_database_is_judged(tmp_path, capsys) -> None:
    line = _local_line(tmp_path / "home", capsys)
    db = tmp_path / "home" / "stacks" / "staging" / "db.sqlite"
    assert f"holding {db} (not created yet)" in line["evidence"], line


def test_a_disk_that_cannot_be_read_or_reports_nonsense_is_na_with_its_reason(tmp_path, capsys, monkeypatch):
    db = _database(tmp_path / "home", 1)

    def refused(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(checklist_facts.shutil, "disk_usage", refused)
    line = _local_line(tmp_path / "home", capsys)
    assert line["status"] == checklist.NA and "Permission denied" in line["evidence"], line
    assert line["evidence"].startswith("the database's size was not read: the database's disk: ")
    _disk(monkeypatch, db, free=2 * GIB, total=GIB)
    line = _local_line(tmp_path / "home", capsys)
    assert line["status"] == checklist.NA, line
    assert "reported 2147483648 bytes free of 1073741824" in line["evidence"]


# -- the verdict ---------------------------------------------------------------------------------

def test_a_warning_is_rendered_and_counted_and_fails_nothing() -> None:
    room = checklist_facts.DatabaseRoom("D1 goldgate-prod (u)", 8_000_000_000, cap_bytes=10_000_000_000)
    facts = Facts(stack="prod", now=datetime.now(UTC), target="cloud", room=room)
    line = next(c for c in checklist.CHECKS if c.id == "database_room")
    results = checklist.run_checks(facts, (line,))
    assert [r.status for r in results] == [checklist.WARN] and checklist.failed(results) == []
    data = checklist.to_json("prod", results)
    assert data["passed"] is True and data["counts"] == {"pass": 0, "warn": 1, "fail": 0, "n/a": 0}
    text = checklist.render_text(data)
    assert "[WARN] The database has room to grow" in text and "(80.0%), past 80%" in text
    assert text.endswith("prod: READY (0 pass, 1 warn, 0 fail, 0 n/a)")
