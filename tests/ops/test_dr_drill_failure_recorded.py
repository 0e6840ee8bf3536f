"""A local drill that fails on a file it cannot write is recorded as failed: the checklist must not keep showing the
drill before it as the latest, passing one."""

from __future__ import annotations

import json
import shutil

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.ops.dr import latest_drill


def test_a_drill_that_cannot_write_its_backup_turns_the_checklist_line_red(tmp_path, stack_db, capsys):
    home = tmp_path / "home"
    stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    assert main(["dr-drill", "staging", "--home", str(home)]) == 0
    backups = home / "backups" / "staging"
    # `cp <backup> .goldgate/backups/staging` after the directory was moved away: a file where the directory belongs
    taken = next(backups.glob("*.sqlite"))
    shutil.move(backups, home / "backups" / "moved")
    shutil.copyfile(home / "backups" / "moved" / taken.name, backups)
    capsys.readouterr()

    assert main(["dr-drill", "staging", "--home", str(home)]) == 1
    out = capsys.readouterr().out
    assert "DR drill (local) FAILED" in out and str(backups) in out
    latest = latest_drill(home, "staging", "local")
    assert latest["passed"] is False and str(backups) in latest["error"]

    main(["checklist", "staging", "--home", str(home), "--offline", "--json"])
    line = next(c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] == "dr_drill")
    assert line["status"] == "fail" and "the last DR drill failed" in line["evidence"], line
