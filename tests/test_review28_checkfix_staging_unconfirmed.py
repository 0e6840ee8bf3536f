"""A STAGING deploy the target applied and whose rollout it could not confirm (RolloutNotConfirmed: the cloud's
`pulumi up` applied it, the watch of RunPod's rollout failed) is recorded with `rollout_confirmed: false` (28ae29e).
The checklist reasons from it as the gate does: its `staging_image_pipeline` line no longer passes on such a deploy,
and the window its per-image lines count over starts where the gate's error rate starts (promote._deployed_at): at the
first of the deploys of the image whose rollout was not confirmed. docs/LOG_EVENTS.md says what its log line carries."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "release"))   # the release tests' in-process target

from release_support import StandInApi, golden_suite, standin_api
from test_promotion_evidence import A, B
from test_review28_relfix_unconfirmed_gate import Unwatched

from goldgate.commands.release import do_deploy
from goldgate.errors import GoldgateError
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, serving_window
from goldgate.release.ledger import Ledger, release_line
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden

LOG_EVENTS = Path(__file__).resolve().parents[1] / "docs" / "LOG_EVENTS.md"


@pytest.fixture
def paths(tmp_path: Path) -> GoldenPaths:
    """As tests/release/conftest.py's: a golden suite of its own under the test's tmp_path."""
    suite = golden_suite(tmp_path / "golden")
    return GoldenPaths(cases_dir=suite / "cases", references_dir=suite / "references", reports_dir=suite / "reports")


def _line(ledger: Ledger, image: str) -> tuple[str, str]:
    facts = Facts(stack="staging", now=datetime.now(UTC), images={"staging": image}, ledger=tuple(ledger.entries()))
    return checklist.staging_image_via_pipeline(facts)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _deployed_twice(target: Unwatched, ledger: Ledger) -> None:
    """A on STAGING, then B: applied with its rollout not confirmed, then deployed again, its rollout watched."""
    do_deploy(target, ledger, "staging", A, "user")
    target.unwatched.add(("staging", B))
    with pytest.raises(GoldgateError, match="its rollout not confirmed"):
        do_deploy(target, ledger, "staging", B, "user")
    target.unwatched.clear()
    do_deploy(target, ledger, "staging", B, "user")


def test_the_pipeline_line_fails_while_the_last_deploy_of_the_image_is_unconfirmed(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Unwatched(api, {"staging": A})
        do_deploy(target, ledger, "staging", A, "user")
        target.unwatched.add(("staging", B))
        with pytest.raises(GoldgateError, match="its rollout not confirmed"):
            do_deploy(target, ledger, "staging", B, "user")
        unconfirmed = ledger.entries()[-1]
        status, evidence = _line(ledger, B)
        # Before: PASS "... deployed by the pipeline (ledger deploy #2)".
        assert status == checklist.FAIL, evidence
        assert evidence == (f"STAGING runs {B}, but its rollout was not confirmed (ledger #{unconfirmed.seq}): deploy "
                            f"it again with `goldgate deploy staging --image {B}` (the stack up: `goldgate up "
                            "staging`)")
        target.unwatched.clear()
        do_deploy(target, ledger, "staging", B, "user")   # the rollout watched this time
    again = ledger.entries()[-1]
    status, evidence = _line(ledger, B)
    assert status == checklist.PASS and f"(ledger deploy #{again.seq})" in evidence, evidence


def test_the_window_starts_where_the_gates_error_rate_starts(tmp_path: Path, paths: GoldenPaths) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Unwatched(api, {"staging": A})
        _deployed_twice(target, ledger)
        unconfirmed, again = ledger.entries()[-2:]
        assert unconfirmed.get("rollout_confirmed") is False and again.get("after") == B
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        target.since.clear()
        check_gate(target, ledger, paths.reports_dir / "latest.json")
    window = serving_window(ledger.entries(), "staging", "staging", B)
    assert window is not None
    # STAGING has served B since the deploy whose rollout was not confirmed: the gate's error rate counts from there,
    # and so do the checklist's per-image lines (before: from the deploy that only watched it again).
    assert target.since and _when(target.since[-1]) == _when(unconfirmed.ts)
    assert _when(window.since) == _when(unconfirmed.ts)
    assert window.to_words() == (f"since deploy #{unconfirmed.seq} at {unconfirmed.ts} (its rollout not confirmed; "
                                 f"deployed again as #{again.seq})")
    # that deploy switched STAGING from A to B: its workers' start-up lines count from it too, from when it began
    # (its rollout started B's workers before its entry was written)
    assert window.startup_change is None
    assert window.startup_since is not None and _when(window.startup_since) == _when(unconfirmed.get("started_at"))
    assert _when(window.startup_since) <= _when(unconfirmed.ts)


def test_log_events_says_what_the_deployed_line_of_an_unconfirmed_deploy_carries(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Unwatched(api, {"staging": A})
        target.unwatched.add(("staging", B))
        with pytest.raises(GoldgateError):
            do_deploy(target, ledger, "staging", B, "user")
    line = json.loads(release_line(ledger.entries()[-1], "2026.11.0"))
    assert line["event"] == "release.deployed" and line["error"]
    row = next(r for r in LOG_EVENTS.read_text(encoding="utf-8").splitlines() if r.startswith("| `release.deployed`"))
    ending = re.search(r'`message` ends "([^"]+)"', row)
    assert ending is not None and "`error` is set" in row, row
    assert line["message"].endswith(ending.group(1)), line["message"]
