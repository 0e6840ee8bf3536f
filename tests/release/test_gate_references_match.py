"""The gate opens only for a report that compared each render with the reference images the gate's checkout holds
(committed). `goldgate golden staging --references-dir <the candidate's own renders>` compares each render with
itself and passes; its report records other files (their sha256), and the gate refuses it. So does a report that
does not say (an older goldgate's), and one made before a reference was changed."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from release_support import StandInApi, render_png, standin_api
from test_gate_and_lock import NOW, RECORDED, THR, failed, report
from test_promotion_partial_failure import A, B, Recorded, _staging_passes

from goldgate.commands.release import do_deploy
from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths, run_golden


def _unlike_any_reference(workflow: str, inputs: dict) -> list[bytes]:
    size = int(inputs.get("width", 64)), int(inputs.get("height", 64))
    return [render_png(f"a broken model {i}", *size) for i in range(int(inputs.get("batch_size", 1)))]


def test_a_run_against_the_candidates_own_renders_does_not_open_the_gate(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    own = replace(paths, references_dir=tmp_path / "own-renders")
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Recorded(api, {})
        _staging_passes(target, ledger, paths, A)
        assert promote(target, ledger, home, paths=paths).ok
        api.renders = _unlike_any_reference  # B renders nothing like the committed references
        do_deploy(target, ledger, "staging", B, "test")
        assert not run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        run_golden(target, "staging", ledger, paths=own, update_references=True, poll_s=0.01)
        fooled = run_golden(target, "staging", ledger, paths=own, poll_s=0.01)
        assert fooled.passed  # each render compared with itself
        target.deploys.clear()
        with pytest.raises(PromotionRefused, match=r"report_references_match: the report compared 2 of the 2 "
                                                   r"reference images \(batch.png, square.png\) with other files"):
            promote(target, ledger, home, paths=paths)
    assert target.deploys == [] and target.pins["prod"] == A


def _references(paths: GoldenPaths) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths.references_dir.iterdir()}


def test_a_report_that_does_not_say_which_references_it_compared_with_is_refused(paths: GoldenPaths) -> None:
    d = evaluate(report(), A, THR, ErrorRate(40, 1, "t"), now=NOW, recorded=RECORDED, references=_references(paths))
    assert failed(d) == ["report_references_match"]
    (why,) = [c.detail for c in d.conditions if not c.passed]
    assert why.startswith("the report does not say which references it compared with")


def test_a_reference_changed_since_the_run_or_missing_from_the_checkout_refuses_it(paths: GoldenPaths) -> None:
    committed = _references(paths)
    ran = report(references={"dir": "scripts/golden-tests/references", "sha256": dict(committed)})
    assert failed(evaluate(ran, A, THR, ErrorRate(40, 1, "t"), now=NOW, recorded=RECORDED,
                           references=committed)) == []
    changed = {**committed, "square.png": "0" * 64}
    assert failed(evaluate(ran, A, THR, ErrorRate(40, 1, "t"), now=NOW, recorded=RECORDED,
                           references=changed)) == ["report_references_match"]
    missing = {**committed, "square.png": None}
    assert failed(evaluate(ran, A, THR, ErrorRate(40, 1, "t"), now=NOW, recorded=RECORDED,
                           references=missing)) == ["report_references_match"]
