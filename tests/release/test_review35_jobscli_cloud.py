"""`goldgate jobs <stack> --target cloud` (or GOLDGATE_TARGET=cloud) reads the cloud stack's API, the one its Pulumi
outputs name (`api_url`), with its token from GOLDGATE_API_TOKEN[_<STACK>], as `goldgate cancel --target cloud` does.

The cloud stack's API here is a real local service (a local STAGING stack's), named by the stack's `public_base_url`,
which the `pulumi` stand-in's program turns into the stack's `api_url` output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_cloud_deployer import A, deployer, emulator, make_project  # noqa: F401 -- emulator: a fixture, by name

from goldgate.cli import main
from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LocalPlatform, str]]:
    """A local STAGING stack (its service plays the cloud API) with one job: (platform, job id)."""
    platform = LocalPlatform(tmp_path / "local-home")
    try:
        ensure_up(platform, "staging")
        state = platform.require_running("staging")
        with httpx.Client(base_url=state["api_url"], timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token('staging')}"}) as client:
            created = client.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {
                "prompt": "a lighthouse", "seed": 3, "width": 512, "height": 512}})
            assert created.status_code == 202, created.text
        yield platform, created.json()["job_id"]
    finally:
        platform.down("staging")


def test_jobs_lists_the_cloud_stacks_jobs_through_its_api(served, tmp_path: Path, emulator,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    platform, job_id = served
    project = make_project(tmp_path, emulator, monkeypatch, public_base_url=platform.require_running("staging")[
        "api_url"])
    deployer(project).deploy("prod", A, progress=lambda _m: None)   # its outputs: api_url
    monkeypatch.setenv("GOLDGATE_PROJECT_DIR", str(project))
    monkeypatch.setenv("GOLDGATE_PULUMI_ROOT", str(project.parent / "pulumi"))
    monkeypatch.setenv("GOLDGATE_API_TOKEN_PROD", platform.api_token("staging"))
    cloud_home = str(tmp_path / "cloud-home")   # no local stack of this home is up: the local path would refuse

    assert main(["jobs", "prod", "--target", "cloud", "--home", cloud_home, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [j["job_id"] for j in listed["jobs"]] == [job_id] and listed["more"] is False
    monkeypatch.setenv("GOLDGATE_TARGET", "cloud")   # the environment's default, as CI and the runbook set it
    assert main(["jobs", "prod", "--home", cloud_home]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith(job_id) and out.endswith("1 job shown, newest first; no more on prod\n")

    # a token the stack does not take: the API's 401, in one line
    monkeypatch.setenv("GOLDGATE_API_TOKEN_PROD", "not-the-token-" + "x" * 32)
    assert main(["jobs", "prod", "--home", cloud_home]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("goldgate: error: GET /api/jobs answered 401: "), captured.err
    assert "not-the-token" not in captured.err


def test_a_cloud_stack_whose_api_cannot_be_found_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys) -> None:
    monkeypatch.setenv("GOLDGATE_PULUMI_ROOT", str(tmp_path / "no-pulumi-here"))
    assert main(["jobs", "prod", "--target", "cloud", "--home", str(tmp_path / "h")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "cannot reach the API of cloud stack prod: the pulumi CLI is not installed" in captured.err
    assert "goldgate up" not in captured.err
