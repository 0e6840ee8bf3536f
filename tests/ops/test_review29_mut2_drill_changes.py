"""Mutation audit (session 29): what a local drill says it compared with the backup before it. The text line names
each table's deleted rows and the rows changed with no `*_at` moved, a value set where there was none (NULL) is a
change, a column a migration added since is no change, and a backup before it that cannot be read is named in a note
(the drill still passes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_fixtures import run_sql

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


def _drill(home: Path, capsys: pytest.CaptureFixture, *extra: str) -> dict:
    assert main(["dr-drill", "staging", "--home", str(home), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


_FIRST_WITHOUT_ERROR = "(SELECT id FROM jobs WHERE error IS NULL ORDER BY id LIMIT {})"
_DELETE_FIRST = ("DELETE FROM webhook_deliveries WHERE job_id IN (SELECT id FROM jobs ORDER BY id DESC LIMIT 1)",
                 "DELETE FROM job_metrics WHERE job_id IN (SELECT id FROM jobs ORDER BY id DESC LIMIT 1)",
                 "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs ORDER BY id DESC LIMIT 1)")


@pytest.fixture(autouse=True)
def clean_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)


def test_the_text_names_deleted_rows_and_changed_rows_with_no_stamp_moved(tmp_path, stack_db, capsys) -> None:
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    _drill(home, capsys)
    # One job deleted, two given an error by hand (a NULL set: no `*_at` value moves).
    run_sql(db, *_DELETE_FIRST,
            f"UPDATE jobs SET error = 'by hand' WHERE id IN {_FIRST_WITHOUT_ERROR.format(2)}")
    assert main(["dr-drill", "staging", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if line.strip().startswith("since previous backup")]
    assert "jobs +0 -1 ~2 (2 with no *_at moved)" in line, out


def test_a_table_that_only_lost_rows_is_listed(tmp_path, stack_db, capsys) -> None:
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    _drill(home, capsys)
    run_sql(db, *_DELETE_FIRST)
    assert main(["dr-drill", "staging", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if line.strip().startswith("since previous backup")]
    assert "jobs +0 -1 ~0" in line and "no row added, deleted or changed" not in line, out


def test_a_value_set_where_there_was_none_is_a_change(tmp_path, stack_db, capsys) -> None:
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=10)
    _drill(home, capsys)
    run_sql(db, f"UPDATE jobs SET error = 'by hand' WHERE id IN {_FIRST_WITHOUT_ERROR.format(1)}")
    second = _drill(home, capsys)
    assert second["changes_since_previous"]["tables"]["jobs"] == {"added": 0, "deleted": 0, "changed": 1,
                                                                   "unstamped": 1}
    assert [n for n in second["notes"] if "1 job(s) changed with none of their *_at values moved" in n]


def test_a_column_added_since_the_backup_before_is_no_change_and_the_rest_is_compared(tmp_path, stack_db,
                                                                                       capsys) -> None:
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=10)
    _drill(home, capsys)
    run_sql(db, "ALTER TABLE job_metrics ADD COLUMN review29_note TEXT",
            "UPDATE job_metrics SET review29_note = 'x'",
            "DELETE FROM job_metrics WHERE job_id IN (SELECT job_id FROM job_metrics ORDER BY job_id LIMIT 1)")
    second = _drill(home, capsys)
    assert second["passed"], second
    assert second["changes_since_previous"]["tables"]["job_metrics"] == {"added": 0, "deleted": 1, "changed": 0,
                                                                          "unstamped": 0}, second
    assert not [n for n in second["notes"] if "was not compared" in n], second["notes"]


def test_a_backup_before_that_cannot_be_read_is_named_and_the_drill_still_passes(tmp_path, stack_db,
                                                                                 capsys) -> None:
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=10)
    first = _drill(home, capsys)
    Path(first["backup"]).write_bytes(b"not a database at all" * 100)
    run_sql(db, f"UPDATE jobs SET error = 'by hand' WHERE id IN {_FIRST_WITHOUT_ERROR.format(1)}")
    second = _drill(home, capsys)
    assert second["passed"], second
    assert second["changes_since_previous"] is None
    [note] = [n for n in second["notes"] if "was not compared with the one before it" in n]
    assert Path(first["backup"]).name in note and "could not be read" in note, note
