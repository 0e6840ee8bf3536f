"""`goldgate recover` and `goldgate cancel` act on a cloud stack with `--target cloud` (or GOLDGATE_TARGET=cloud):
the stack's API is the one its Pulumi outputs name (`api_url`), with its token from GOLDGATE_API_TOKEN[_<STACK>],
as the golden runs reach it. Under GOLDGATE_TARGET=cloud both said "stack prod is not up; run `goldgate up prod`",
sending a cloud operator to start a local PROD.

The cloud stack's API here is a real local service (a local STAGING stack's), named by the stack's
`public_base_url`, which the `pulumi` stand-in's program turns into the stack's `api_url` output."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from test_cloud_deployer import A, deployer, emulator, make_project  # noqa: F401 -- emulator: a fixture, by name

from goldgate.cli import main
from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform


@pytest.fixture
def served(tmp_path: Path):
    """A local STAGING stack (its service plays the cloud API) with one completed job: (platform, job id)."""
    platform = LocalPlatform(tmp_path / "local-home")
    try:
        ensure_up(platform, "staging")
        state = platform.require_running("staging")
        with httpx.Client(base_url=state["api_url"], timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token('staging')}"}) as client:
            created = client.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {
                "prompt": "a lighthouse", "seed": 3, "width": 512, "height": 512}})
            assert created.status_code == 202, created.text
            job_id = created.json()["job_id"]
            deadline = time.monotonic() + 90
            while client.get(f"/api/status/{job_id}").json()["status"] != "completed":
                assert time.monotonic() < deadline, "the job never completed"
                time.sleep(0.2)
        yield platform, job_id
    finally:
        platform.down("staging")


def test_recover_and_cancel_reach_the_cloud_stacks_api(served, tmp_path: Path, emulator,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    platform, job_id = served
    api_url = platform.require_running("staging")["api_url"]
    project = make_project(tmp_path, emulator, monkeypatch, public_base_url=api_url)
    deployer(project).deploy("prod", A, progress=lambda _m: None)   # its outputs: api_url
    monkeypatch.setenv("GOLDGATE_PROJECT_DIR", str(project))
    monkeypatch.setenv("GOLDGATE_PULUMI_ROOT", str(project.parent / "pulumi"))
    monkeypatch.setenv("GOLDGATE_API_TOKEN_PROD", platform.api_token("staging"))
    cloud_home = tmp_path / "cloud-home"   # no local stack of this home is up: the local path would refuse

    assert main(["recover", job_id, "--stack", "prod", "--target", "cloud", "--home", str(cloud_home)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{job_id}: completed ("), out
    monkeypatch.setenv("GOLDGATE_TARGET", "cloud")   # the environment's default, as CI and the runbook set it
    assert main(["cancel", job_id, "--stack", "prod", "--home", str(cloud_home)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{job_id}: completed (") and "not cancelled by this request" in out, out


def test_a_cloud_stack_whose_api_cannot_be_found_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys) -> None:
    monkeypatch.setenv("GOLDGATE_PULUMI_ROOT", str(tmp_path / "no-pulumi-here"))
    assert main(["recover", "0" * 32, "--stack", "prod", "--target", "cloud", "--home", str(tmp_path / "h")]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the API of cloud stack prod: the pulumi CLI is not installed" in err, err
    assert "goldgate up" not in err


@pytest.mark.parametrize("target, hint", [("local", "`goldgate status prod` shows workers exiting at start"),
                                          ("cloud", "`goldgate stuck prod --target cloud` reads the endpoint's /health")])
def test_a_job_runpod_still_holds_points_at_the_targets_own_view_of_its_workers(target: str, hint: str) -> None:
    from goldgate.commands.local import _recovered_line

    line = _recovered_line("0" * 32, {"status": "queued", "reason": "duplicate", "runpod_status": "IN_QUEUE"},
                           None, "prod", target)
    assert "RunPod still has it IN_QUEUE: no webhook was lost" in line and hint in line, line
