"""Review 27 (mutrel): a full golden run reads the workflows its stack serves (GET /api/workflows) before any case
runs. A read that fails on the way (a dropped connection, a 503) is tried again, so one hiccup is no failed run; a
stack that never answers fails the run, naming why, since nothing then shows a case ran each workflow. Mutants that
dropped either retry, or let the unread list pass the run, survived the suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from release_support import StandInApi, _handler
from serving import serving
from test_gate_and_lock import Stacks

import goldgate.release.golden as golden_module
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64


class FlakyApi(StandInApi):
    """The stand-in job API whose GET /api/workflows first fails `failures` times: `how` is "503" (an answer) or
    "drop" (the connection closed without one) or "no-ids" (a list whose entries lack their id)."""

    def __init__(self, failures: int, how: str) -> None:
        super().__init__(image_tag=A)
        self.failures, self.how, self.reads = failures, how, 0


def _flaky_handler(api: FlakyApi) -> type:
    class Handler(_handler(api)):  # type: ignore[misc]
        def do_GET(self) -> Any:
            if self.path == "/api/workflows":
                api.reads += 1
                if api.reads <= api.failures:
                    if api.how == "drop":
                        self.close_connection = True
                        return None
                    if api.how == "no-ids":
                        return self._json(200, {"workflows": [{"version": "wf-a@1"}, {"id": "wf-b"}]})
                    return self._json(503, {"error": {"code": "unavailable", "message": "busy"}})
            return super().do_GET()

    return Handler


def _run(tmp_path: Path, paths: GoldenPaths, api: FlakyApi, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(golden_module, "RETRY_BACKOFF_S", 0.01)
    with serving(_flaky_handler(api)) as url:
        api.url = url
        return run_golden(Stacks(url, {"staging": A}), "staging", Ledger(tmp_path / "home"), paths=paths,
                          poll_s=0.01)


@pytest.mark.parametrize("how", ["503", "drop"])
def test_one_failed_read_of_the_served_workflows_is_tried_again_and_the_run_passes(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    api = FlakyApi(failures=1, how=how)
    run = _run(tmp_path, paths, api, monkeypatch)
    assert run.passed, run.report["failures"]
    assert run.report["workflows"] == {"served": ["wf-a", "wf-b"], "uncovered": []}
    assert api.reads == 2


def test_a_stack_that_never_answers_its_workflows_fails_the_run_and_says_why(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    api = FlakyApi(failures=100, how="503")
    run = _run(tmp_path, paths, api, monkeypatch)
    assert all(case["passed"] for case in run.report["cases"])   # the image drew every case well
    assert not run.passed
    assert run.report["failures"] == [
        ("the workflows staging serves could not be read (GET /api/workflows: it answered 503: unavailable: busy "
         "(4 attempts)), so nothing shows that a golden case runs each of them; run the golden tests again")]
    assert api.reads == 4


def test_a_list_of_workflows_without_their_ids_fails_the_run_and_says_so(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path, paths, FlakyApi(failures=100, how="no-ids"), monkeypatch)
    assert not run.passed
    assert run.report["workflows"]["error"] == "it answered 200 without a list of workflows, each with its id"
