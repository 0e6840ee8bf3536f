"""Review 27 (mutrel): a rollback's smoke run runs the smoke cases whose workflow the release serves, read from
GET /api/workflows. When that list cannot be read, it runs every smoke case (each fails on its own if its workflow
is missing) and says so: a mutant that ran none instead, and so failed a good release's smoke (a verdict against
it in the ledger), survived the suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from serving import serving
from test_promotion_evidence import Target
from test_review26_smoke_declared import ServingApi, _serving_handler
from test_review26_smoke_rollback_cases import _qualify, _smoke_runs

import goldgate.release.golden as golden_module
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


class UnlistingApi(ServingApi):
    """ServingApi whose GET /api/workflows answers 503 while `unlisted` is set."""

    unlisted: bool = False


def _handler(api: UnlistingApi) -> type:
    class Handler(_serving_handler(api)):  # type: ignore[misc]
        def do_GET(self) -> Any:
            if self.path == "/api/workflows" and api.unlisted:
                return self._json(503, {"error": {"code": "unavailable", "message": "busy"}})
            return super().do_GET()

    return Handler


def test_a_rollback_whose_release_cannot_list_its_workflows_runs_every_smoke_case(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(golden_module, "RETRY_BACKOFF_S", 0.01)
    home, lines = tmp_path / "home", []
    api = UnlistingApi(image_tag=A)
    with serving(_handler(api)) as url:
        api.url = url
        ledger, target = Ledger(home), Target(api, {})
        for image in (A, B):
            _qualify(target, ledger, paths, image)
            assert promote(target, ledger, home, paths=paths).ok
        api.unlisted = True
        outcome = rollback(target, ledger, home, to=A, paths=paths, progress=lines.append)
    assert outcome.ok and outcome.outcome == "rolled_back" and target.pins["prod"] == A
    smoke = _smoke_runs(ledger, A)[-1]
    assert smoke.get("passed") is True and smoke.get("cases") == 1 and smoke.get("skipped_cases") is None
    assert any(line.startswith("could not read the workflows prod serves (GET /api/workflows: it answered 503")
               and line.endswith(": running every smoke case") for line in lines), lines
