"""`goldgate promote --check` against a PROD at its daily spend limit says the refusal the promotion itself would
give, word for word: an operator who reads one and then meets the other must not wonder whether they are two checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_support import invoke
from test_promotion_evidence import A, B, Target, _released, _staging_passes
from test_review34_spendrel_promotion import AT_LIMIT, spend_api

import goldgate.commands.release as release_commands
from goldgate.errors import GoldgateError
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths


def test_promote_check_gives_the_promotions_own_refusal_at_the_limit(
        tmp_path: Path, paths: GoldenPaths, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with spend_api() as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        api.daily_spend, api.creates_taken = AT_LIMIT, len(api.creates)
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, _ = invoke(capsys, "promote", "--check", "--json", "--home", str(home), "--cases-dir",
                              str(paths.cases_dir), "--references-dir", str(paths.references_dir), "--reports-dir",
                              str(paths.reports_dir))
        with pytest.raises(GoldgateError) as raised:
            promote(target, ledger, home, paths=paths)
    assert code == 1, out
    assert json.loads(out)["refused"] == str(raised.value)
