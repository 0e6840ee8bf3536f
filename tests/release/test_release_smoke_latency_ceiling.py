"""A smoke case asking for more time than PROD allows is refused before PROD changes, by promote and by rollback;
found only inside the smoke run, PROD would already run the candidate, the smoke would fail, and so would the
automatic rollback's smoke."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released

from goldgate.release.cases import CaseError
from goldgate.release.history import UnknownRelease
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


class TightProd(Target):
    """PROD allows a case 60 s; STAGING the default."""

    tight = False

    def spec(self, stack: str) -> SimpleNamespace:
        spec = super().spec(stack)
        if stack == "prod" and self.tight:
            spec.thresholds = dataclasses.replace(Thresholds(), golden_case_latency_s=60.0)
        return spec


def _ask_for_more_time(paths: GoldenPaths) -> None:
    for case in paths.cases_dir.glob("*.yaml"):
        text = case.read_text()
        if "smoke: true" in text:
            case.write_text(text.replace("expect: {", "expect: {max_latency_s: 300, ", 1))


def _deploys(target: Target) -> list[str]:
    seen: list[str] = []
    real = target.deploy
    target.deploy = lambda stack, image, progress: (seen.append(f"{stack}={image}"),  # type: ignore[method-assign]
                                                    real(stack, image, progress))[1]
    return seen


def test_promote_refuses_a_smoke_case_over_prods_limit_before_prod_changes(tmp_path: Path,
                                                                          paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    _ask_for_more_time(paths)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = TightProd(api, {})
        target.deploy("staging", A, lambda _m: None)
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        target.tight = True
        deploys = _deploys(target)
        with pytest.raises(CaseError, match=r"max_latency_s: 300 s is more than .*golden_case_latency_s \(60 s\)"):
            promote(target, ledger, home, paths=paths)
    assert deploys == [] and "prod" not in target.pins


def test_rollback_refuses_a_smoke_case_over_prods_limit_before_prod_changes(tmp_path: Path,
                                                                           paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = TightProd(api, {})
        _released(target, ledger, home, paths, A, B)
        _ask_for_more_time(paths)
        target.tight = True
        with pytest.raises(CaseError, match=r"golden_case_latency_s \(60 s\)"):
            rollback(target, ledger, home, paths=paths)
    assert target.pins["prod"] == B
    assert [e for e in ledger.entries() if e.kind == "rollback"] == []


def test_a_rollback_of_a_prod_that_runs_nothing_says_so_in_words(tmp_path: Path, paths: GoldenPaths) -> None:
    with standin_api(StandInApi(image_tag=A)) as api, \
            pytest.raises(UnknownRelease, match=r"\(prod runs nothing yet\)") as raised:
        rollback(TightProd(api, {}), Ledger(tmp_path / "home"), tmp_path / "home", paths=paths)
    assert "None" not in str(raised.value)
