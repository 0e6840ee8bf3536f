"""The ledger key reaches the ledger and nothing else: `goldgate` takes GOLDGATE_LEDGER_KEY out of its environment
before a command runs, so Pulumi (which the Automation API hands the whole environment, and which hands it on to its
provider plugins) never sees it, while every ledger entry the command appends is still signed with it."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import yaml
from release_support import invoke
from test_cloud_deployer import REPO, STANDIN, A, emulator, project  # noqa: F401 -- fixtures, used by name

from goldgate.release.ledger import Ledger

KEY = "0123456789abcdef" * 4          # what `openssl rand -hex 32` gives: 64 characters
KEY_ENV = "GOLDGATE_LEDGER_KEY"       # spelled out: the CI workflows set it by name


def _recording_pulumi(root: Path, log: Path) -> Path:
    """A `pulumi` that notes whether it was given the ledger key, then answers as the stand-in does."""
    (root / "bin").mkdir(parents=True)
    wrapper = root / "bin" / "pulumi"
    wrapper.write_text(f"#!/bin/sh\nif [ -n \"${{{KEY_ENV}+set}}\" ]; then echo key >> '{log}'; "
                       f"else echo no-key >> '{log}'; fi\nexec {sys.executable} {STANDIN} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return root


def test_pulumi_run_by_a_cloud_deploy_never_sees_the_ledger_key_yet_the_deploy_is_signed(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path) -> None:  # noqa: F811
    doc = yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())
    staging = yaml.safe_load((REPO / "stacks" / "Pulumi.staging.yaml").read_text())
    staging["config"]["goldgate:spec"]["cloud"] = doc["config"]["goldgate:spec"]["cloud"]
    staging["config"]["goldgate:spec"]["image"] = A
    (project / "stacks" / "Pulumi.staging.yaml").write_text(yaml.safe_dump(staging, sort_keys=False))
    seen = tmp_path / "pulumi-saw.txt"
    monkeypatch.setenv("GOLDGATE_PULUMI_ROOT", str(_recording_pulumi(tmp_path / "recording-pulumi", seen)))
    monkeypatch.setenv("GOLDGATE_PROJECT_DIR", str(project))
    monkeypatch.setenv(KEY_ENV, KEY)
    image = A.replace("a" * 64, "c" * 64)
    code, out, err = invoke(capsys, "deploy", "staging", "--target", "cloud", "--image", image,
                            "--home", str(tmp_path / "home"))
    assert code == 0, err
    calls = seen.read_text().split()
    assert calls and set(calls) == {"no-key"}, f"{calls.count('key')} of {len(calls)} pulumi runs saw the key"
    [deploy] = Ledger(tmp_path / "home", key=KEY.encode()).entries()
    assert deploy.kind == "deploy" and deploy.mac is not None and deploy.authentic
    assert KEY not in out + err
    assert os.environ[KEY_ENV] == KEY   # put back for whoever runs goldgate in-process next
