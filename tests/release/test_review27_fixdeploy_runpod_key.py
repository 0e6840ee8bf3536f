"""The RunPod key a cloud deploy watches the rollout with is checked against RunPod's control plane before anything
changes. Read only after `pulumi up`, a stale key left in the environment (RUNPOD_API_KEY, which overrides the
stack's goldgate:runpodApiKey secret) let Pulumi apply the image and pin it, and then failed with "401 ... check the
stack's key" although the stack's key was fine: no deploy in the ledger, STAGING serving the image all the same, and
on PROD an automatic rollback that changed it a second time, unwatched. And a rollback of a PROD that never took a
release says so, as promote does, instead of "prod runs <the shipped all-zero placeholder>"."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
import yaml
from fixtures.release.pulumi_standin import encrypt
from release_support import StandInApi, standin_api
from test_cloud_deployer import KEY, STANDIN, A, B, commands, deployer, emulator, make_project
from test_promotion_evidence import Target

from goldgate.local.runpod.emulator import RunPodEmulator
from goldgate.release.deployers.cloud import CloudDeployFailed
from goldgate.release.history import UnknownRelease
from goldgate.release.ledger import Ledger
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths
from goldgate.runpod import ControlPlaneClient

__all__ = ["emulator"]   # the fixture, used by name

OLD_KEY = "rp-old-key-5e1d7c"   # revoked at RunPod: the emulator takes only KEY
STACK_SECRET = {"goldgate:runpodApiKey": {"secure": encrypt(KEY)}}
UP = ["--non-interactive", "up"]


@pytest.fixture
def project(tmp_path: Path, emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PROD holds the right key in its goldgate:runpodApiKey secret, and its `pulumi up` runs the program with that
    secret (as the real program's RunPod provider does), whatever the environment says."""
    proj = make_project(tmp_path, emulator, monkeypatch, config=STACK_SECRET)
    wrapper = tmp_path / "pulumi" / "bin" / "pulumi"
    wrapper.write_text(f"#!/bin/sh\nRUNPOD_API_KEY={KEY}\nexport RUNPOD_API_KEY\nexec {sys.executable} {STANDIN} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return proj


def _pinned(project: Path) -> str:
    return yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["goldgate:spec"]["image"]


def _ups(project: Path) -> int:
    return sum(argv[:2] == UP for argv in commands(project))


@pytest.mark.parametrize("variable", ["RUNPOD_API_KEY", "RUNPOD_API_KEY_PROD"])
def test_a_stale_key_in_the_environment_is_refused_before_the_stack_changes_naming_the_variable(
        project: Path, emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    endpoint_id = deployer(project).deploy("prod", A, progress=lambda _m: None).rollout["endpoint_id"]
    monkeypatch.setenv(variable, OLD_KEY)
    with pytest.raises(CloudDeployFailed, match=rf"not deploying {B} to prod: RunPod refused the RunPod API key from the "
                                        rf"environment variable {variable} \(HTTP 401\)") as refused:
        deployer(project).deploy("prod", B, progress=lambda _m: None)
    said = str(refused.value)
    assert "Nothing was changed" in said and "unset it to use the stack's" in said
    assert OLD_KEY not in said and KEY not in said
    assert _pinned(project) == A and _ups(project) == 1   # no pin, no second `pulumi up`
    with ControlPlaneClient(KEY, emulator.api_base) as rp:
        assert rp.get_endpoint(endpoint_id).image == A


def test_a_stale_stack_secret_is_refused_before_the_first_up_naming_the_secret(
        project: Path, emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY")
    doc = yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())
    doc["config"]["goldgate:runpodApiKey"] = {"secure": encrypt(OLD_KEY)}
    (project / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(CloudDeployFailed, match=r"RunPod refused the RunPod API key from the goldgate:runpodApiKey secret of "
                                        r"stack prod \(HTTP 401\); set the current key there") as refused:
        deployer(project).deploy("prod", B, progress=lambda _m: None)
    assert OLD_KEY not in str(refused.value) and _pinned(project) == A and _ups(project) == 0
    with ControlPlaneClient(KEY, emulator.api_base) as rp:
        assert rp.list_endpoints() == ()   # no endpoint created either


def test_a_key_revoked_during_pulumi_up_fails_the_watch_naming_its_source_and_what_was_applied(
        project: Path, emulator: RunPodEmulator) -> None:
    deployer(project).deploy("prod", A, progress=lambda _m: None)

    def revoke_once_up_is_done(line: str) -> None:
        if line.strip() == "pulumi: Resources:":   # the program's RunPod calls are over: RunPod rotates the key
            emulator._server.app.api_key = "rp-key-rotated-elsewhere"

    with pytest.raises(CloudDeployFailed, match=rf"pulumi up applied {B} to prod .*RunPod refused the RunPod API key from the "
                                        r"environment variable RUNPOD_API_KEY \(HTTP 401\)") as refused:
        deployer(project).deploy("prod", B, progress=revoke_once_up_is_done)
    said = str(refused.value)
    assert f"deploy {B} to prod again" in said and KEY not in said and "check the stack's key" not in said
    assert _pinned(project) == B


def test_a_rollback_of_a_prod_that_never_took_a_release_says_it_runs_nothing(tmp_path: Path,
                                                                            paths: GoldenPaths) -> None:
    placeholder = "registry.example.com/acme/goldgate-worker@sha256:" + "0" * 64
    with standin_api(StandInApi(image_tag=placeholder)) as api, \
            pytest.raises(UnknownRelease, match=r"\(prod runs nothing yet: it pins the shipped placeholder") as said:
        rollback(Target(api, {"prod": placeholder}), Ledger(tmp_path / "home"), tmp_path / "home", paths=paths)
    assert "0" * 64 not in str(said.value)
