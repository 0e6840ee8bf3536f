"""A PROD change that deploys the image PROD already runs (a promotion of it, `goldgate rollback --to` it after a
rollback to it failed) is no new RunPod release: the warm workers stay, and their `models_loaded` lines come before
the change. `goldgate checklist prod` said NOT READY ("no `models_loaded` line from a worker of ... since promotion #8
..."), as STAGING's checklist did before 80471bf: the start-up line counted from the newest change. It now counts
`models_loaded` from the promotion or rollback that switched PROD to the image. A failed promotion writes its
automatic rollback's intent and outcome between its own: that rollback's intent is the switch (PROD ran the candidate
then), not the promotion that first put the image there."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "release"))   # the release tests' in-process target

from checklist_support import checklist_checks, released_locally
from promotion_support import released
from release_support import golden_suite
from test_promotion_evidence import A, B, Target, _staging_passes

from goldgate.cli import main
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, read_log_facts, serving_window
from goldgate.release.ledger import Entry, Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import RollbackFailed, rollback
from goldgate.release.verification import GoldenPaths

C = "local/worker@sha256:" + "c" * 64


@pytest.fixture
def paths(tmp_path: Path) -> GoldenPaths:
    """As tests/release/conftest.py's: a golden suite of its own under the test's tmp_path."""
    suite = golden_suite(tmp_path / "golden")
    return GoldenPaths(cases_dir=suite / "cases", references_dir=suite / "references", reports_dir=suite / "reports")


def test_a_promotion_of_the_image_prod_runs_leaves_the_startup_line_green(tmp_path, capsys):
    with released_locally(tmp_path) as (home, reports, _):
        # STAGING still runs what PROD runs, its golden report fresh: the gate passes, PROD keeps its warm workers
        assert main(["promote", "--home", str(home), "--reports-dir", str(reports)]) == 0
        lines = checklist_checks(capsys, "prod", home, reports)
    startup = lines["startup_log"]
    # Before: FAIL "no `models_loaded` line from a worker of <image> since promotion #8 ... (promoted as #10)".
    assert startup["status"] == "pass", startup["evidence"]
    assert "(then redeployed: promotion #" in startup["evidence"], startup["evidence"]
    # the job lines still count from the newest promotion
    assert "(then redeployed" not in lines["cold_start"]["evidence"]


# -- which PROD change switched it to its image, on ledgers the real promote and rollback wrote -------------------

def _intents(ledger: Ledger, kind: str) -> list[Entry]:
    return [e for e in ledger.entries() if e.kind == kind and e.get("phase") == "intent"]


def _window(ledger: Ledger, image: str):
    window = serving_window(ledger.entries(), "prod", "prod", image)
    assert window is not None
    return window


def test_a_promotion_of_the_image_prod_runs_counts_start_up_lines_from_the_promotion_that_put_it_there(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, B) as r:
        home, ledger, target = r.home, r.ledger, r.target
        assert promote(target, ledger, home, paths=paths).ok       # B again: STAGING still runs it
    first, again = _intents(ledger, "promotion")[1:]
    window = _window(ledger, B)
    assert window.since.startswith(again.ts[:19]) and window.change.startswith(f"promotion #{again.seq} at")
    assert window.startup_change == f"promotion #{first.seq} at {first.ts}", window.startup_words()


def test_after_a_failed_promotion_the_switch_is_its_automatic_rollback_not_the_release_before(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, B, make=lambda api: Target(api, {}, crash={C})) as r:
        home, ledger, target = r.home, r.ledger, r.target
        _staging_passes(target, ledger, paths, C)
        failed = promote(target, ledger, home, paths=paths)   # PROD took C, its host died: rolled back to B
        assert failed.outcome == "deploy_failed" and failed.rollback is not None and failed.rollback.ok
        [automatic] = _intents(ledger, "rollback")
        # the rollback's intent and outcome sit between the promotion's: PROD ran C when the rollback started
        promotion_intent = _intents(ledger, "promotion")[-1]
        assert promotion_intent.seq < automatic.seq < ledger.entries()[-1].seq
        assert _window(ledger, B).startup_change is None    # the rollback switched PROD to B: nothing earlier
        _staging_passes(target, ledger, paths, B)
        assert promote(target, ledger, home, paths=paths).ok   # B again, on the rollback's workers
    window = _window(ledger, B)
    # Not B's first promotion: C's workers replaced its, and the rollback's replaced C's.
    assert window.startup_change == f"rollback #{automatic.seq} at {automatic.ts}", window.startup_words()


def test_a_promotion_whose_deploy_changed_nothing_is_passed_over(tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, B) as r:
        home, ledger, target = r.home, r.ledger, r.target
        target.refuse.add(C)
        _staging_passes(target, ledger, paths, C)
        refused = promote(target, ledger, home, paths=paths)   # refused before PROD's pin moved: nothing rolled back
        assert refused.unchanged and refused.rollback is None and target.pins["prod"] == B
        _staging_passes(target, ledger, paths, B)
        assert promote(target, ledger, home, paths=paths).ok
    first = _intents(ledger, "promotion")[1]
    assert _window(ledger, B).startup_change == f"promotion #{first.seq} at {first.ts}"


def test_a_rollback_to_the_image_prod_runs_counts_from_the_rollback_that_switched_to_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, B) as r:
        home, ledger, target = r.home, r.ledger, r.target
        target.crash.add(A)
        with pytest.raises(RollbackFailed):
            rollback(target, ledger, home, to=A, paths=paths)     # PROD took A, the deploy then died
        assert target.pins["prod"] == A
        target.crash.clear()
        assert rollback(target, ledger, home, to=A, paths=paths).ok   # `rollback --to` the image PROD runs
    switched, again = _intents(ledger, "rollback")
    window = _window(ledger, A)
    assert window.change.startswith(f"rollback #{again.seq} at")
    assert window.startup_change == f"rollback #{switched.seq} at {switched.ts}", window.startup_words()


# -- the start-up line itself -----------------------------------------------------------------------------------

def _ts(second: int) -> str:
    return f"2026-12-01T10:00:{second:02d}.000Z"


def _prod(seq: int, second: int, kind: str, phase: str, **fields: object) -> Entry:
    return Entry(seq=seq, ts=_ts(second), kind=kind, fields={"stack": "prod", "target": "local", "phase": phase,
                                                             **fields}, prev="", hash="")


def _models_loaded(directory: Path, image: str, second: int) -> None:
    from goldgate.logs import JsonLogger

    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"worker-{second}.log").open("w") as fh:
        JsonLogger("worker", fh, stack="prod", workflow_version="2026.11.0", worker_image_tag=image).info(
            "models_loaded", message="6 model files present")
    line = json.loads((directory / f"worker-{second}.log").read_text())
    (directory / f"worker-{second}.log").write_text(json.dumps({**line, "ts": _ts(second)}) + "\n")


def test_the_startup_line_passes_on_a_warm_worker_and_names_both_changes(tmp_path: Path) -> None:
    ledger = (_prod(1, 1, "promotion", "intent", image=A, before=None),
              _prod(2, 3, "promotion", "outcome", intent_seq=1, image=A, before=None, after=A, prod_image=A,
                    outcome="promoted"),
              _prod(3, 20, "promotion", "intent", image=A, before=A),
              _prod(4, 25, "promotion", "outcome", intent_seq=3, image=A, before=A, after=A, prod_image=A,
                    outcome="promoted"))
    window = serving_window(ledger, "prod", "prod", A)
    _models_loaded(tmp_path / "logs", A, 2)   # PROD's worker, started by the first promotion, still warm
    logs = read_log_facts(tmp_path / "logs", windows={A: window})
    status, evidence = checklist.startup_log(Facts(stack="prod", now=datetime.now(UTC), images={"prod": A},
                                                   logs=logs))
    assert status == checklist.PASS, evidence
    assert f"since promotion #1 at {_ts(1)} (then redeployed: promotion #3 at {_ts(20)} (promoted as #4))" in evidence
