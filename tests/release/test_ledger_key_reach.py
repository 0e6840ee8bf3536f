"""The ledger key reaches the ledger and nothing else: `goldgate` takes GOLDGATE_LEDGER_KEY out of its environment
before a command runs, so Pulumi (which the Automation API hands the whole environment, and which hands it on to its
provider plugins) never sees it, while every ledger entry the command appends is still signed with it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from release_support import invoke
from test_cloud_deployer import A, cloud_staging, emulator, project  # noqa: F401 -- fixtures, used by name

from goldgate.release.ledger import Ledger

KEY = "0123456789abcdef" * 4          # what `openssl rand -hex 32` gives: 64 characters
KEY_ENV = "GOLDGATE_LEDGER_KEY"       # spelled out: the CI workflows set it by name


def test_pulumi_run_by_a_cloud_deploy_never_sees_the_ledger_key_yet_the_deploy_is_signed(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path) -> None:  # noqa: F811
    seen = tmp_path / "pulumi-saw.txt"   # whether each pulumi run was given the ledger key
    cloud_staging(project, tmp_path, monkeypatch,
                  f"if [ -n \"${{{KEY_ENV}+set}}\" ]; then echo key >> '{seen}'; else echo no-key >> '{seen}'; fi")
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
