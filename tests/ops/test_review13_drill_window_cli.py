"""`goldgate dr-drill` prunes by the stack's own storage.backup_retention_days, not the default: an operator who
keeps a year of backups must not lose them to the 90-day default, and one who keeps a week must not keep 90."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.commands import ops
from goldgate.local.platform import LocalPlatform
from goldgate.ops.backup import take_backup


def _platform_with_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, days: int) -> LocalPlatform:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["storage"]["backup_retention_days"] = days
    stacks = tmp_path / "local.yaml"
    stacks.write_text(yaml.safe_dump(doc))
    platform = LocalPlatform(tmp_path / "home", stacks)
    monkeypatch.setattr(ops, "_platform", lambda _args: platform)
    return platform


def _backup_days_ago(db: Path, home: Path, days: float) -> Path:
    when = datetime.now(UTC) - timedelta(days=days)
    return take_backup(db, home / "backups" / "staging", "staging", clock=lambda: when)[0]


@pytest.mark.parametrize("days, kept", [(7, False), (365, True)])
def test_the_drill_prunes_by_the_stacks_window(tmp_path, monkeypatch, stack_db, days, kept):
    platform = _platform_with_window(tmp_path, monkeypatch, days)
    db = stack_db(platform.db_path("staging"), jobs=5)
    month_old = _backup_days_ago(db, platform.home, 30)

    assert main(["dr-drill", "staging", "--home", str(platform.home)]) == 0

    assert month_old.exists() is kept
    assert month_old.with_name(month_old.name.replace(".sqlite", ".manifest.json")).exists() is kept
