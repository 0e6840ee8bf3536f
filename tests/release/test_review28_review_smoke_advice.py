"""`goldgate status prod` offers `goldgate rollback --to <the release PROD runs>` when that release passed PROD's smoke
before and its last smoke there failed (a fault of PROD's own); that rollback must then run, not answer "nothing to roll
back" (found by the session-28 final review)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_support import StandInApi, invoke, standin_api
from test_promotion_evidence import Target

import goldgate.commands.release as release_commands
from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger

GOOD = "local/worker@sha256:" + "b" * 64


def test_the_rollback_to_that_status_offers_is_not_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch, paths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    StackDir(home, "prod").pin(GOOD, reason="promotion")
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=GOOD, before=None,
                           gate={"passed": True}, trigger="test")
    ledger.append("golden", stack="prod", target="local", image=GOOD, suite="smoke", passed=True, role="prod",
                  failures=[], trigger="test")
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=GOOD,
                  before=None, after=GOOD, pinned=GOOD, prod_image=GOOD, outcome="promoted", trigger="test")
    # Later, an operator's `goldgate golden prod --smoke` fails (a fault of PROD's own, e.g. its disk).
    ledger.append("golden", stack="prod", target="local", image=GOOD, suite="smoke", passed=False, role="prod",
                  failures=["smoke-sdxl: job failed"], trigger="test")
    capsys.readouterr()
    assert main(["status", "prod", "--home", str(home), "--json"]) == 0
    warning = json.loads(capsys.readouterr().out)["smoke_failed"]
    print(warning)
    assert f"`goldgate rollback --to {GOOD}`" in warning
    with standin_api(StandInApi(image_tag=GOOD)) as api:
        monkeypatch.setattr(release_commands, "_deployer", lambda _a: Target(api, {"staging": GOOD, "prod": GOOD}))
        code, out, err = invoke(capsys, "rollback", "--to", GOOD, "--home", str(home), "--cases-dir",
                                str(paths.cases_dir), "--references-dir", str(paths.references_dir),
                                "--reports-dir", str(paths.reports_dir))
    print(code, out, err)
    assert "nothing to roll back" not in err, err
