"""`goldgate cancel --all-queued --client NAME`: only the jobs that named client created (jobs.client, migration 0010)
are selected, the preview counts the selected jobs per client (the API token's apart), and the --yes line it prints
keeps --client. A value that is no client name is refused before anything is read; a database from before the
migration is refused for --client, in words, rather than selecting every job."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from ops_fixtures import build_stack_db, run_sql

from goldgate.cli import main
from goldgate.errors import GoldgateError
from goldgate.ops import bulk_cancel
from goldgate.ops.bulk_cancel import QUEUED, Selection

STACK = "staging"
# job id -> the client that created it (None: the API token); every one queued
QUEUED_BY = {"job-0000001": "alice", "job-0000002": None, "job-0000003": "alice", "job-0000004": "bob",
             "job-0000005": None, "job-0000006": "alice"}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = build_stack_db(tmp_path / "db.sqlite", 12, stack=STACK)
    run_sql(path, "UPDATE jobs SET status = 'completed'",
            *[f"UPDATE jobs SET status = 'queued', client = {'NULL' if c is None else repr(c)} WHERE id = '{job}'"
              for job, c in QUEUED_BY.items()])
    return path


def _preview(db: Path, selection: Selection) -> tuple[list[str], dict, str]:
    selected = bulk_cancel.select_local(db, STACK, selection)
    report = bulk_cancel.report(STACK, "local", selection, selected, "goldgate cancel ... --yes").to_dict()
    return [j.id for j in selected.jobs], report, bulk_cancel.render_text(report)


def test_client_selects_only_that_clients_queued_jobs(db: Path) -> None:
    ids, report, text = _preview(db, Selection(QUEUED, client="alice"))
    assert sorted(ids) == ["job-0000001", "job-0000003", "job-0000006"]
    assert report["by_client"] == {"alice": 3} and report["selection"]["client"] == "alice"
    assert "3 jobs to cancel (local: queued, client alice)" in text and "by client: alice 3" in text
    assert _preview(db, Selection(QUEUED, client="carol"))[0] == []


def test_the_preview_of_every_queued_job_counts_them_per_client(db: Path) -> None:
    ids, report, text = _preview(db, Selection(QUEUED))
    assert len(ids) == 6
    assert report["by_client"] == {"alice": 3, "(API token)": 2, "bob": 1}
    assert "by client: alice 3, (API token) 2, bob 1" in text


def test_a_database_without_the_client_column_is_refused_for_client_and_served_without(tmp_path: Path) -> None:
    path = build_stack_db(tmp_path / "db.sqlite", 4, stack=STACK)
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX jobs_client_created")  # migration 0012's, on the column: dropped with it
    conn.execute("ALTER TABLE jobs DROP COLUMN client")  # as a database before migration 0010
    conn.execute("UPDATE jobs SET status = 'queued'")
    conn.commit()
    conn.close()
    with pytest.raises(GoldgateError, match="no jobs.client column \\(migration 0010\\)"):
        bulk_cancel.select_local(path, STACK, Selection(QUEUED, client="alice"))
    _, report, text = _preview(path, Selection(QUEUED))
    assert report["by_client"] == {"(API token)": 4} and "by client" not in text


@pytest.mark.parametrize("value", ["Alice", "a" * 33, "alice;rm", "../x", "a b", "é", "1a"])
def test_a_value_that_is_no_client_name_is_refused_before_anything_is_read(tmp_path, capsys, value) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["cancel", "--all-queued", "--client", value, "--stack", STACK, "--home", str(tmp_path)])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "is not a client name" in err and "\n" not in err.strip().splitlines()[-1]
    assert not (tmp_path / "stacks").exists()


def test_client_with_a_job_id_is_refused(tmp_path, capsys) -> None:
    code = main(["cancel", "0" * 32, "--client", "alice", "--stack", STACK, "--home", str(tmp_path)])
    assert code != 0 and "--client" in capsys.readouterr().err


def test_the_cli_preview_selects_by_client_and_its_yes_line_keeps_client(tmp_path, capsys) -> None:
    path = tmp_path / "stacks" / STACK / "db.sqlite"
    build_stack_db(path, 12, stack=STACK)
    run_sql(path, "UPDATE jobs SET status = 'completed'",
            *[f"UPDATE jobs SET status = 'queued', client = {'NULL' if c is None else repr(c)} WHERE id = '{job}'"
              for job, c in QUEUED_BY.items()])
    code = main(["cancel", "--all-queued", "--client", "bob", "--stack", STACK, "--home", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 2, out
    assert "1 job to cancel (local: queued, client bob)" in out
    assert f"goldgate cancel --all-queued --stack {STACK} --client bob --yes" in out
