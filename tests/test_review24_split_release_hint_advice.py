"""Error lines of the release (the checklist, history, rollback, the gate) that tell the operator what to do,
done as told. Split off test_review16_hint_advice.py, whose helpers and per-test `home` these use: each test
brings up stacks of its own, so the two files run on two workers at once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_review16_hint_advice import advised, goldgate, home, run_advice, status  # noqa: F401 (a fixture)

from goldgate.release.history import resolve
from goldgate.release.ledger import Ledger


def test_the_checklist_s_staging_deploy_advice_records_the_deploy_it_asks_for(
        home: Path, tmp_path: Path) -> None:  # noqa: F811 -- the imported fixture
    def staging_line() -> dict:
        done = goldgate(home, "checklist", "staging", "--offline", "--json", reports=tmp_path / "reports")
        return next(c for c in json.loads(done.stdout)["checks"] if c["id"] == "staging_image_pipeline")

    assert goldgate(home, "up", "staging").returncode == 0  # pins the working tree's image, records no deploy
    line = staging_line()
    assert line["status"] == "fail" and "records no deploy" in line["evidence"], line
    run_advice(home, advised(line["evidence"])[0])
    assert staging_line()["status"] == "pass"


def test_a_release_as_history_shows_it_is_taken_by_rollback_to(tmp_path: Path) -> None:
    image = "local/worker@sha256:" + "ab12" * 16
    ledger = Ledger(tmp_path)
    intent = ledger.append("promotion", phase="intent", stack="prod", image=image, gate={"passed": True})
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", image=image, prod_image=image,
                  outcome="promoted", smoke_passed=True)
    shown = goldgate(tmp_path, "history")
    cells = re.findall(r"local/worker@sha256:[0-9a-f]+", shown.stdout)
    assert cells and cells[-1] != image, shown.stdout  # history shortens the digest
    assert resolve(ledger.entries(), cells[-1]).image == image
    # one of another repository is not it
    with pytest.raises(Exception, match="not a verified release"):
        resolve(ledger.entries(), "other/worker" + cells[-1].removeprefix("local/worker"))


def test_rollback_of_a_prod_with_no_pin_names_a_rollback_that_runs(
        home: Path, tmp_path: Path) -> None:  # noqa: F811 -- the imported fixture
    # PROD's pin was removed (the advice for a pin no local worker runs): PROD comes up on no image.
    assert goldgate(home, "up", "staging").returncode == 0
    image = status(home, "staging")["image"]
    ledger = Ledger(home)
    intent = ledger.append("promotion", phase="intent", stack="prod", image=image, gate={"passed": True})
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", image=image, prod_image=image,
                  outcome="promoted", smoke_passed=True)
    assert goldgate(home, "up", "prod").returncode == 0
    assert status(home, "prod")["image"] is None

    refused = goldgate(home, "rollback", reports=tmp_path / "reports")
    assert refused.returncode == 1, refused.stderr
    rollbacks = [c for c in advised(refused.stderr) if c.startswith("goldgate rollback --to ")]
    assert rollbacks, f"no rollback to run: {refused.stderr}"
    run_advice(home, rollbacks[0], reports=tmp_path / "reports")
    assert status(home, "prod")["image"] == image


def test_the_gate_sends_a_report_of_another_image_to_the_golden_run_of_its_own_staging_stack() -> None:
    # `release --staging stg` (and the cloud's own stack names): `goldgate golden staging` tested another stack.
    from datetime import UTC, datetime

    from goldgate.release.gate import ErrorRate, evaluate
    from goldgate.spec import Thresholds

    now = datetime.now(UTC)
    ran, runs = "local/worker@sha256:" + "a" * 64, "local/worker@sha256:" + "b" * 64
    report = {"schema": "goldgate.golden-report.v1", "suite": "full", "stack": "stg", "image": ran, "passed": True,
              "failures": [], "finished_at": now.isoformat(), "latency_s": {"mean": 1.0}}
    decision = evaluate(report, runs, Thresholds(), ErrorRate(10, 0, "t"), now=now, staging_stack="stg")
    digest = next(c for c in decision.conditions if c.name == "report_digest")
    assert not digest.passed and advised(digest.detail) == ["goldgate golden stg"], digest.detail
