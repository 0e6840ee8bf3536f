"""A running local stack keeps the stacks file it started with: after `workflow_version` was raised in the file (the
runbook's "Ship a new version of a workflow", step 2) its golden and smoke runs refuse to run. That refusal is no
verdict on the digest (a promotion records it as `smoke_not_run`, not `smoke_failed`, and the gate does not hold it
against the digest), and `release`, `promote` and `rollback` find it out before they build, gate or pin anything.
The real LocalDeployer over a stand-in platform and the stand-in job API."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from release_support import TOKEN, StandInApi, _handler, invoke
from serving import serving
from test_gate_and_lock import failed

import goldgate.commands.release as release_commands
from goldgate.errors import GoldgateError, StateError
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.gate import ErrorRate
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
NEW, OLD = "2026.12.0", "2026.11.0"
APPLY = r"`goldgate down prod && goldgate up prod`"


@dataclass
class ServingApi(StandInApi):
    """The stand-in job API, serving GET /api/workflows too: the workflows of the image it runs (`served`, by
    image; any other image serves `every`); a create for another workflow is answered 400 unknown_workflow, as the
    service answers it."""

    served: dict[str, set[str]] = field(default_factory=dict)
    every: frozenset[str] = frozenset({"wf-a", "wf-b"})

    def serves(self) -> set[str] | frozenset[str]:
        return self.served.get(self.image_tag, self.every)


def _serving_handler(api: ServingApi) -> type:
    class Handler(_handler(api)):  # type: ignore[misc]
        def do_GET(self) -> None:
            if self.path != "/api/workflows":
                return super().do_GET()
            if not self._authorized():
                return None
            return self._json(200, {"workflows": [{"id": w, "version": f"{w}@1.0.0", "description": "",
                                                   "parameters": []} for w in sorted(api.serves())]})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                wanted = json.loads(body).get("workflow_id")
            except (ValueError, AttributeError):
                wanted = None
            if self.path == "/api/queue/create" and wanted not in api.serves():
                if not self._authorized():
                    return None
                return self._json(400, {"error": {"code": "unknown_workflow", "message": f"no workflow {wanted!r}"}})
            self.rfile = io.BytesIO(body)
            return super().do_POST()

    return Handler


@contextmanager
def standin_api(api: ServingApi | StandInApi | None = None) -> Iterator[ServingApi]:
    served = api if isinstance(api, ServingApi) else ServingApi(image_tag=api.image_tag if api else A)
    with serving(_serving_handler(served)) as url:
        served.url = url
        yield served


class Platform:
    """What LocalDeployer reads of the local platform: each stack's pin, the version its stacks file declares and
    the one its running host serves (read at its start). `edit_on_deploy` declares a new version for a stack as a
    deploy to it lands (an edit made while a promotion runs)."""

    def __init__(self, home: Path, api: StandInApi) -> None:
        self.home, self.api = home, api
        self.stacks_file = Path(release_commands.__file__).resolve().parents[2] / "stacks" / "local.yaml"
        self.pins: dict[str, str] = {}
        self.declared = {"staging": NEW, "prod": NEW}
        self.served = {"staging": NEW, "prod": NEW}
        self.deploys: list[str] = []
        self.edit_on_deploy: dict[str, str] = {}

    def spec(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(thresholds=Thresholds(), role=stack, workflow_version=self.declared[stack])

    def pinned_image(self, stack: str) -> str | None:
        return self.pins.get(stack)

    def deploy(self, stack: str, image: str, progress: Any) -> SimpleNamespace:
        self.deploys.append(f"{stack}={image}")
        self.pins[stack] = image
        self.api.image_tag = image
        if stack in self.edit_on_deploy:
            self.declared[stack] = self.edit_on_deploy.pop(stack)
        return SimpleNamespace(endpoint_id=f"ep-{stack}", workers=[])

    def status(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(running=True, api_url=self.api.url, image=self.pins.get(stack),
                               workflow_version=self.served[stack])

    def api_token(self, stack: str) -> str:
        return TOKEN

    def not_up(self, stack: str) -> StateError:
        return StateError(f"stack {stack} is not up")

    def up(self, stack: str, progress: Any) -> None:
        pass


class Deployer(LocalDeployer):
    def error_rate(self, stack: str, since: Any) -> ErrorRate:
        return ErrorRate(10, 0, "t")


def _qualify(deployer: Deployer, ledger: Ledger, paths: GoldenPaths, image: str) -> None:
    deployer.deploy("staging", image, lambda _m: None)
    assert run_golden(deployer, "staging", ledger, paths=paths, poll_s=0.01).passed


def _released_a_then_b_on_staging(tmp_path: Path, api: StandInApi,
                                  paths: GoldenPaths) -> tuple[Platform, Deployer, Ledger]:
    home = tmp_path / "home"
    platform = Platform(home, api)
    deployer, ledger = Deployer(home, platform=platform), Ledger(home)
    _qualify(deployer, ledger, paths, A)
    assert promote(deployer, ledger, home, paths=paths).ok
    _qualify(deployer, ledger, paths, B)
    return platform, deployer, ledger


def test_a_smoke_run_refused_for_a_stack_not_as_declared_is_no_verdict_on_the_digest(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # The file is edited while the promotion runs: PROD's smoke run, and the automatic rollback's, refuse to run.
    with standin_api(StandInApi(image_tag=A)) as api:
        platform, deployer, ledger = _released_a_then_b_on_staging(tmp_path, api, paths)
        platform.edit_on_deploy["prod"] = "2026.13.0"
        outcome = promote(deployer, ledger, tmp_path / "home", paths=paths)
        assert outcome.outcome == "smoke_not_run", outcome.message()
        assert outcome.rollback is not None and outcome.rollback.outcome == "smoke_not_run"
        message = outcome.message()
        assert "PROD smoke did not run" in message and "goldgate down prod && goldgate up prod" in message
        assert "--retry-rejected" not in message and "PROD's own" not in message
        smoke_runs = [e for e in ledger.entries() if e.kind == "golden" and e.get("stack") == "prod"
                      and e.get("passed") is not True]
        assert smoke_runs == []                                   # nothing ran, so nothing failed
        platform.declared["prod"] = NEW                           # the edit undone
        decision = check_gate(deployer, ledger, paths.reports_dir / "latest.json")[0]
        assert "prod_verdict" not in failed(decision) and decision.passed, decision.to_dict()
        assert promote(deployer, ledger, tmp_path / "home", paths=paths).ok   # no --retry-rejected needed
    assert platform.pins["prod"] == B


def test_promote_refuses_before_the_gate_when_prod_runs_another_workflow_version_than_declared(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with standin_api(StandInApi(image_tag=A)) as api:
        platform, deployer, ledger = _released_a_then_b_on_staging(tmp_path, api, paths)
        platform.served["prod"] = OLD          # stacks/local.yaml raised to NEW, PROD not restarted
        entries, deploys = len(ledger.entries()), list(platform.deploys)
        with pytest.raises(GoldgateError, match=(
                r"cannot promote to prod: stacks/local\.yaml's prod section declares workflow_version '2026\.12\.0' "
                rf"but the running stack serves '2026\.11\.0' .*{APPLY}, or undo it; nothing was changed")):
            promote(deployer, ledger, tmp_path / "home", paths=paths)
        with pytest.raises(GoldgateError, match=f"cannot roll prod back: .*{APPLY}.*nothing was changed"):
            rollback(deployer, ledger, tmp_path / "home", to=A, paths=paths)
    assert len(ledger.entries()) == entries and platform.deploys == deploys and platform.pins["prod"] == A


def _release(capsys: pytest.CaptureFixture, home: Path, paths: GoldenPaths) -> tuple[int, str, str]:
    return invoke(capsys, "release", "--home", str(home), "--target", "local", "--engine", "local",
                  "--workflow-version", NEW, "--concurrency", "2", "--cases-dir", str(paths.cases_dir),
                  "--references-dir", str(paths.references_dir), "--reports-dir", str(paths.reports_dir))


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_release_refuses_before_the_build_when_a_stack_runs_another_workflow_version_than_declared(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths,
        stack: str) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A)) as api:
        platform = Platform(home, api)
        platform.served[stack] = OLD
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: Deployer(home, platform=platform))
        code, _out, err = _release(capsys, home, paths)
    assert code == 1
    assert f"cannot release: stacks/local.yaml's {stack} section declares workflow_version '{NEW}'" in err
    assert f"`goldgate down {stack} && goldgate up {stack}`" in err and "nothing was changed" in err
    assert platform.deploys == [] and [e for e in Ledger(home).entries() if e.kind == "build"] == []


def test_release_refuses_before_the_build_when_staging_and_prod_declare_other_workflow_versions(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths) -> None:
    # Only STAGING's section raised: the gate would refuse the report (report_workflow_version) after the build,
    # the STAGING deploy and the golden run.
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A)) as api:
        platform = Platform(home, api)
        platform.declared["prod"] = platform.served["prod"] = OLD
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: Deployer(home, platform=platform))
        code, _out, err = _release(capsys, home, paths)
    assert code == 1
    assert f"cannot release: staging declares workflow_version '{NEW}' and prod '{OLD}'" in err
    assert "stacks/local.yaml (stacks: prod: workflow_version)" in err and "nothing was changed" in err
    assert platform.deploys == [] and [e for e in Ledger(home).entries() if e.kind == "build"] == []
