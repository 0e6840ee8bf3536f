"""A rollback's smoke run (manual and automatic) runs the smoke cases whose workflow the release it went back to
serves: after a workflow was retired for its `-v2` (the runbook's "Ship a new version of a workflow"), the cases
point at the new id, which a release from before it lacks; that release, good when it ran, was recorded as
`smoke_failed`. The cases left out are named; a rollback with none left is not verified (`smoke_not_run`), and is
no verdict on the release. A promotion's smoke run still runs every smoke case."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import render_png, write_case
from test_promotion_evidence import Target
from test_review26_smoke_declared import ServingApi, standin_api

from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import RollbackFailed, rollback
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64   # from before wf-a2: serves wf-a and wf-b
B = "local/worker@sha256:" + "b" * 64   # wf-a retired for wf-a2
BEFORE_V2, AFTER_V2 = {"wf-a", "wf-b"}, {"wf-a2", "wf-b"}


def _qualify(target: Target, ledger: Ledger, paths: GoldenPaths, image: str) -> None:
    target.deploy("staging", image, lambda _m: None)
    assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed


def _retire_wf_a(paths: GoldenPaths, keep_batch_smoke: bool) -> None:
    """The `square` case now runs wf-a2 (its reference refreshed); `batch` (wf-b) is a smoke case too if asked."""
    write_case(paths.cases_dir, "square", "workflow: wf-a2\nsmoke: true\ninputs: {prompt: p1, seed: 1, width: 64, "
                                          "height: 64}\nexpect: {images: 1, width: 64, height: 64}\n")
    (paths.references_dir / "square.png").write_bytes(render_png("wf-a2:p1:1:0", 64, 64))
    if keep_batch_smoke:
        write_case(paths.cases_dir, "batch", "workflow: wf-b\nsmoke: true\ninputs: {prompt: p2, seed: 2, width: 48, "
                                             "height: 32, batch_size: 2}\nexpect: {images: 2, width: 48, height: 32}\n")


def _a_then_b(tmp_path: Path, api: ServingApi, paths: GoldenPaths, keep_batch_smoke: bool,
              crash: set[str] | None = None) -> tuple[Target, Ledger, Path]:
    home = tmp_path / "home"
    ledger, target = Ledger(home), Target(api, {}, crash=crash)
    _qualify(target, ledger, paths, A)
    assert promote(target, ledger, home, paths=paths).ok
    _retire_wf_a(paths, keep_batch_smoke)
    _qualify(target, ledger, paths, B)
    return target, ledger, home


def _smoke_runs(ledger: Ledger, image: str) -> list:
    return [e for e in ledger.entries() if e.kind == "golden" and e.get("stack") == "prod" and e.get("image") == image]


def test_a_rollback_to_a_release_from_before_a_workflow_runs_the_smoke_cases_it_serves(
        tmp_path: Path, paths: GoldenPaths) -> None:
    lines: list[str] = []
    with standin_api(ServingApi(image_tag=A, served={A: BEFORE_V2, B: AFTER_V2})) as api:
        target, ledger, home = _a_then_b(tmp_path, api, paths, keep_batch_smoke=True)
        assert promote(target, ledger, home, paths=paths).ok
        assert _smoke_runs(ledger, B)[-1].get("cases") == 2     # a promotion's smoke run: every smoke case
        outcome = rollback(target, ledger, home, to=A, paths=paths, progress=lines.append)
    assert outcome.ok and target.pins["prod"] == A
    smoke = _smoke_runs(ledger, A)[-1]
    assert smoke.get("passed") is True and smoke.get("cases") == 1
    assert smoke.get("skipped_cases") == {"square": f"{A} on prod serves no workflow 'wf-a2'"}
    assert f"smoke case square left out: {A} on prod serves no workflow 'wf-a2' (a release from before that " \
           "workflow)" in lines


def test_the_automatic_rollback_of_a_failed_promotion_to_a_release_from_before_a_workflow_is_verified(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with standin_api(ServingApi(image_tag=A, served={A: BEFORE_V2, B: AFTER_V2})) as api:
        target, ledger, home = _a_then_b(tmp_path, api, paths, keep_batch_smoke=True, crash={B})
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "deploy_failed" and outcome.rollback is not None
    assert outcome.rollback.ok, outcome.message()
    assert _smoke_runs(ledger, A)[-1].get("passed") is True and target.pins["prod"] == A


def test_a_rollback_with_no_smoke_case_its_release_serves_is_not_verified_and_no_verdict_on_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with standin_api(ServingApi(image_tag=A, served={A: BEFORE_V2, B: AFTER_V2})) as api:
        target, ledger, home = _a_then_b(tmp_path, api, paths, keep_batch_smoke=False)
        assert promote(target, ledger, home, paths=paths).ok
        with pytest.raises(RollbackFailed, match=(
                rf"rollback of prod to {A} smoke not run: none of the 1 smoke case\(s\) ran: the release serves none "
                r"of their workflows \(wf-a2; it serves wf-a, wf-b\), and a rollback without smoke evidence is not "
                r"verified: add a `smoke: true` case")):
            rollback(target, ledger, home, to=A, paths=paths)
        outcome = next(e for e in reversed(ledger.entries()) if e.kind == "rollback" and e.get("phase") == "outcome")
        assert outcome.get("outcome") == "smoke_not_run" and outcome.get("prod_image") is None
        # Nothing ran, so nothing failed: the only smoke run of A on PROD is its promotion's, which passed (a failed
        # one would be PROD's verdict against A, which the gate then holds against it).
        assert [e.get("passed") for e in _smoke_runs(ledger, A)] == [True]
    assert target.pins["prod"] == A
