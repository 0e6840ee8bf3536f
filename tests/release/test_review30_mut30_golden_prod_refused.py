"""Review 30 mutation audit (mut30): `goldgate golden prod` refused while a promotion or rollback holds the release
lock names itself as the command to run again once that change is done, and says nothing was run."""

from __future__ import annotations

from pathlib import Path

import pytest
from promotion_support import released
from release_support import invoke
from test_promotion_evidence import A, B

import goldgate.commands.release as release_commands
from goldgate.release.lock import ReleaseLock
from goldgate.release.verification import GoldenPaths


def test_a_golden_run_of_prod_refused_by_a_promotion_names_itself(tmp_path: Path, paths: GoldenPaths,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with released(tmp_path, paths, A, B) as r:
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: r.target)
        entries = len(r.ledger.entries())
        with ReleaseLock(r.home, "promote staging -> prod"):
            code, _out, err = invoke(capsys, "golden", "prod", "--home", str(r.home), "--cases-dir",
                                     str(paths.cases_dir), "--references-dir", str(paths.references_dir),
                                     "--reports-dir", str(paths.reports_dir))
        assert len(r.ledger.entries()) == entries
    assert code != 0
    assert "nothing was run: wait for it to finish and run the golden tests again (`goldgate golden prod`)" in err, err
