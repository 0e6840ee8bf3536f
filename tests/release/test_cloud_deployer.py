"""The cloud deployer drives Pulumi's Automation API (against a stand-in `pulumi` binary that records
its command lines and answers as the CLI does) and waits for the rollout on the RunPod emulator's
control plane, whose workers cycle to the new release like RunPod's."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.release.pulumi_standin import encrypt

from goldgate.local.runpod.config import EmulatorConfig
from goldgate.local.runpod.emulator import RunPodEmulator
from goldgate.release.deployers.cloud import CloudDeployer, CloudDeployFailed, CloudSettings
from goldgate.runpod import ControlPlaneClient, EndpointPatch

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "fixtures" / "release" / "pulumi_standin.py"
A = "registry.example.com/acme/goldgate-worker@sha256:" + "a" * 64
B = "registry.example.com/acme/goldgate-worker@sha256:" + "b" * 64
KEY = "runpod-test-key"
__all__ = ["KEY", "A", "B", "cloud_staging", "commands", "deployer", "emulator", "make_project"]  # shared with other deploy tests


def _idle_worker(image: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    # A worker process that just stays up: enough for the emulator's fleet to count and cycle it.
    return [sys.executable, "-c", "import time; time.sleep(300)"], env


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[RunPodEmulator]:
    emu = RunPodEmulator(EmulatorConfig(api_key=KEY, logs_dir=tmp_path / "emu-logs"), launcher=_idle_worker).start()
    yield emu
    emu.stop()


def make_project(tmp_path: Path, emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch,
                 config: dict[str, Any] | None = None, **spec_fields: Any) -> Path:
    """A project whose prod stack pins A on the emulator's RunPod, deployed through the `pulumi` stand-in;
    `config` adds stack config keys, `spec_fields` (cloud_account_id, public_base_url) change the spec."""
    proj = tmp_path / "project"
    (proj / "stacks").mkdir(parents=True)
    (proj / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    doc = yaml.safe_load((REPO / "stacks" / "Pulumi.prod.yaml").read_text())
    doc["config"].update(config or {})
    spec = doc["config"]["goldgate:spec"]
    spec["image"] = A
    spec["cloud"]["cloudflare_account_id"] = spec_fields.get("cloud_account_id", "0" * 31 + "1")
    spec["cloud"]["runpod_api_base"] = emulator.api_base.removesuffix("/v2")
    spec["api"]["public_base_url"] = spec_fields.get("public_base_url",
                                                     "https://goldgate-api-prod.example.workers.dev")
    (proj / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    bin_dir = tmp_path / "pulumi" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "pulumi"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {STANDIN} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PULUMI_STANDIN_LOG", str(tmp_path / "pulumi-commands.jsonl"))
    monkeypatch.setenv("PULUMI_STANDIN_STATE_DIR", str(tmp_path / "pulumi-state"))
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return proj


def cloud_staging(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: str) -> None:
    """`project`'s STAGING made a cloud stack on PROD's cloud (its `cloud:` section), pinned to A, run by a `pulumi`
    (under tmp_path/recording-pulumi) that runs the shell line `record` first, then answers as the stand-in does."""
    doc = yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())
    staging = yaml.safe_load((REPO / "stacks" / "Pulumi.staging.yaml").read_text())
    staging["config"]["goldgate:spec"]["cloud"] = doc["config"]["goldgate:spec"]["cloud"]
    staging["config"]["goldgate:spec"]["image"] = A
    (project / "stacks" / "Pulumi.staging.yaml").write_text(yaml.safe_dump(staging, sort_keys=False))
    root = tmp_path / "recording-pulumi"
    (root / "bin").mkdir(parents=True)
    wrapper = root / "bin" / "pulumi"
    wrapper.write_text(f"#!/bin/sh\n{record}\nexec {sys.executable} {STANDIN} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("GOLDGATE_PULUMI_ROOT", str(root))
    monkeypatch.setenv("GOLDGATE_PROJECT_DIR", str(project))


@pytest.fixture
def project(tmp_path: Path, emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_project(tmp_path, emulator, monkeypatch)


def deployer(project: Path) -> CloudDeployer:
    return CloudDeployer(CloudSettings(project_dir=project, pulumi_root=str(project.parent / "pulumi"),
                                       rollout_timeout_s=60, rollout_poll_s=0.2))


def commands(project: Path) -> list[list[str]]:
    path = project.parent / "pulumi-commands.jsonl"
    return [json.loads(line)["argv"] for line in path.read_text().splitlines()]


def test_a_deploy_puts_back_the_max_workers_runpod_lowered_on_an_idle_endpoint(project: Path,
                                                                              emulator: RunPodEmulator) -> None:
    """RunPod lowers an endpoint idle for 7 days to 0 max workers. A deploy that only sent the new image (Pulumi's
    state still said the spec's max) left STAGING with no workers, and every golden case timed out. The deploy puts
    the spec's workers back without a refresh (a refresh reads with the state's credentials, revoked after a
    rotation)."""
    d = deployer(project)
    endpoint_id = d.deploy("prod", A, progress=lambda _m: None).rollout["endpoint_id"]
    spec = yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["goldgate:spec"]
    with ControlPlaneClient(KEY, emulator.api_base.removesuffix("/v2")) as rp:
        rp.update_endpoint(endpoint_id, EndpointPatch(workers_min=0, workers_max=0))   # RunPod's idle policy
        said: list[str] = []
        d.deploy("prod", B, progress=said.append)
        live = rp.get_endpoint(endpoint_id)
    assert "--refresh" not in commands(project)[-1] and any("setting the spec's" in m for m in said)
    assert (live.workers_min, live.workers_max) == (spec["endpoint"]["workers_min"], spec["endpoint"]["workers_max"])
    assert live.workers_max > 0


def test_deploy_pins_the_digest_in_the_spec_runs_up_and_waits_for_every_worker(project: Path,
                                                                               emulator: RunPodEmulator) -> None:
    d = deployer(project)
    first = d.deploy("prod", A, progress=lambda _m: None)
    assert first.after == A
    endpoint_id = first.rollout["endpoint_id"]
    log: list[str] = []
    second = d.deploy("prod", B, progress=log.append)
    assert (second.before, second.after) == (A, B)
    assert second.rollout["endpoint_id"] == endpoint_id  # same endpoint: a rollout is an image patch
    assert second.rollout["percent_on_latest"] == 100
    # The pin lives in the stack file, inside the one spec.
    spec = yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["goldgate:spec"]
    assert spec["image"] == B and spec["role"] == "prod"
    with ControlPlaneClient(KEY, emulator.api_base.removesuffix("/v2")) as rp:
        assert rp.get_endpoint(endpoint_id).image == B
        assert not rp.list_releases(endpoint_id).rollout.in_progress
    assert any("rollout of" in m for m in log)
    ran = commands(project)
    second_run = ran[ran.index(["--non-interactive", "up", "--yes", "--skip-preview", "--message",
                                f"goldgate deploy {A}", "--exec-kind", "auto.local", "--stack", "prod"]) + 1:]
    assert ["config", "set", "--path", "goldgate:spec.image", "--plaintext", "--stack", "prod",
            "--non-interactive", "--", B] in second_run
    assert ["--non-interactive", "up", "--yes", "--skip-preview", "--message", f"goldgate deploy {B}",
            "--exec-kind", "auto.local", "--stack", "prod"] in second_run
    assert ["--non-interactive", "stack", "output", "--json", "--show-secrets", "--stack", "prod"] in second_run
    assert d.current_image("prod") == B


def test_a_failed_up_says_what_is_pinned_and_what_to_do(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_STANDIN_FAIL_UP", "1")
    with pytest.raises(CloudDeployFailed, match=r"pulumi up of prod failed: .*503 Service Unavailable.*pins .*b{64}"):
        deployer(project).deploy("prod", B, progress=lambda _m: None)


def test_a_tag_is_refused_before_pulumi_runs(project: Path) -> None:
    with pytest.raises(CloudDeployFailed, match="not pinned by digest"):
        deployer(project).deploy("prod", "registry.example.com/acme/goldgate-worker:latest", progress=lambda _m: None)
    with pytest.raises(CloudDeployFailed, match="local-target image"):
        deployer(project).deploy("prod", "local/worker@sha256:" + "c" * 64, progress=lambda _m: None)
    assert not (project.parent / "pulumi-commands.jsonl").exists()


def test_an_unknown_stack_and_a_missing_cli_are_clear_errors(project: Path, tmp_path: Path) -> None:
    with pytest.raises(CloudDeployFailed, match="cannot select stack 'qa'.*no stack named 'qa' found"):
        deployer(project).current_image("qa")
    missing = CloudDeployer(CloudSettings(project_dir=project, pulumi_root=str(tmp_path / "nowhere")))
    with pytest.raises(CloudDeployFailed, match="pulumi CLI is not installed"):
        missing.current_image("prod")


def test_api_access_reads_the_output_and_the_token(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = deployer(project)
    d.deploy("prod", A, progress=lambda _m: None)
    monkeypatch.setenv("GOLDGATE_API_TOKEN", "s3cr3t-value")
    access = d.api_access("prod")
    assert access.api_url == "https://goldgate-api-prod.example.workers.dev" and access.token == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(access)
    monkeypatch.setenv("GOLDGATE_API_TOKEN", "s3cr3t-value\n")   # pasted with its line break: works
    assert d.api_access("prod").token == "s3cr3t-value"
    monkeypatch.setenv("GOLDGATE_API_TOKEN", "s3cr3t value")     # no header carries it: refused, never shown
    with pytest.raises(CloudDeployFailed, match="GOLDGATE_API_TOKEN holds a space") as refused:
        d.api_access("prod")
    assert "s3cr3t" not in str(refused.value)
    monkeypatch.delenv("GOLDGATE_API_TOKEN")
    # The stack files ship without the secret: refused, naming it.
    with pytest.raises(CloudDeployFailed, match="no goldgate:apiToken secret in the config of stack prod"):
        d.api_access("prod")
    path = project / "stacks" / "Pulumi.prod.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["goldgate:apiToken"] = {"secure": encrypt("s3cr3t value")}   # set, and no token: refused, not shown
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(CloudDeployFailed, match="the goldgate:apiToken secret of stack prod holds a space") as refused:
        d.api_access("prod")
    assert "s3cr3t" not in str(refused.value)
