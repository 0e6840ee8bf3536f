"""Mutation audit (session 29): an option only the cloud reads, given to dr-drill or prune acting on the local stack
(--cloud or --target cloud forgotten), is refused naming both ways to act on the cloud; nothing is drilled or pruned."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform

UUID = "6f1c1e4e-2b51-4f1d-9a57-1f2c3d4e5f60"


@pytest.fixture(autouse=True)
def local_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)


def test_dr_drill_with_a_database_id_but_no_cloud_is_refused(tmp_path: Path, stack_db,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    stack_db(LocalPlatform(home).db_path("staging"), jobs=3)
    assert main(["dr-drill", "staging", "--home", str(home), "--database-id", UUID]) == 1
    err = capsys.readouterr().err
    assert "--database-id is for the cloud: add --cloud (or --target cloud), or drop it" in err, err
    assert not (home / "backups").exists() or not any((home / "backups").rglob("*.sqlite"))


def test_prune_with_a_database_id_but_no_cloud_is_refused(tmp_path: Path, stack_db,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=3)
    before = db.read_bytes()
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "1", "--database-id", UUID]) == 1
    err = capsys.readouterr().err
    assert "name a D1 database: add --cloud (or --target cloud) to prune it" in err, err
    assert db.read_bytes() == before
