"""`goldgate stuck` on a local stack whose database file is gone or damaged. Before, a stack brought up under the
state dir whose db.sqlite was then deleted read "stack staging was never brought up under this state dir", and a
file that is not a database was answered "`goldgate up` creates and migrates the stack's own", which would start it
on an empty database. Both now say what is wrong and point to the disaster-recovery doc (its restore steps)."""

from __future__ import annotations

import json
from pathlib import Path

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.migrations import apply_sqlite

DR_DOC = "docs/D1_DISASTER_RECOVERY.md"


def _brought_up(home: Path) -> Path:
    """A stack directory as `goldgate up` leaves it: its database, state file and logs."""
    db = LocalPlatform(home).db_path("staging")
    db.parent.mkdir(parents=True)
    apply_sqlite(db)
    (db.parent / "state.json").write_text(json.dumps({"pid": None}))
    (db.parent / "logs").mkdir()
    return db


def test_a_deleted_database_of_a_stack_brought_up_here_says_it_is_gone_not_never_brought_up(tmp_path, capsys):
    home = tmp_path / "home"
    db = _brought_up(home)
    db.unlink()
    assert main(["stuck", "staging", "--home", str(home), "--no-runpod"]) == 1
    err = capsys.readouterr().err
    assert "never brought up" not in err, err
    assert "deleted or moved" in err and DR_DOC in err and err.count("\n") == 1


def test_a_database_file_that_is_not_a_database_points_to_a_restore_not_to_a_new_database(tmp_path, capsys):
    home = tmp_path / "home"
    db = _brought_up(home)
    db.write_bytes(b"not a database at all, just text" * 40)
    assert main(["stuck", "staging", "--home", str(home), "--no-runpod"]) == 1
    err = capsys.readouterr().err
    assert "creates and migrates" not in err, err
    assert "damaged or not a database" in err and DR_DOC in err and err.count("\n") == 1


def test_a_stack_never_brought_up_still_says_so(tmp_path, capsys):
    assert main(["stuck", "staging", "--home", str(tmp_path / "home"), "--no-runpod"]) == 1
    assert "never brought up" in capsys.readouterr().err
