"""Review 19 (rel): only a full run on STAGING becomes latest.json, the report `goldgate promote` gates on. A full
golden run on PROD (an operator checking it by hand) must leave STAGING's report there: put in its place, the gate
refused every promotion (`report_stack`) until STAGING's golden tests were run again."""

from __future__ import annotations

import json
from pathlib import Path

from release_support import StandInApi, standin_api
from test_gate_and_lock import Stacks

from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64


def test_a_full_golden_run_on_prod_leaves_stagings_report_for_the_gate(tmp_path: Path, paths: GoldenPaths) -> None:
    ledger, latest = Ledger(tmp_path / "home", key=None), paths.reports_dir / "latest.json"
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = Stacks(api.url, {"staging": A, "prod": A})
        assert run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01).passed
        on_prod = run_golden(stacks, "prod", ledger, paths=paths, poll_s=0.01)
    assert on_prod.passed and on_prod.path != latest
    assert json.loads(latest.read_text())["stack"] == "staging"
    assert check_gate(stacks, ledger, latest)[0].passed
