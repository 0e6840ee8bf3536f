"""A cloud STAGING deployed through the CLI (the `pulumi` stand-in, the RunPod emulator of test_cloud_deployer.py),
for the tests of what a later cloud deploy records."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import invoke
from test_cloud_deployer import A, cloud_staging


def cloud_staging_deployed(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, project: Path,
                           tmp_path: Path) -> tuple[Path, tuple[str, ...]]:
    """`project`'s STAGING made a cloud stack (cloud_staging) and `goldgate deploy staging --target cloud --image A`
    run once, which must exit 0: (the state home, tmp_path/home; the deploy's argv up to its image, for the next)."""
    cloud_staging(project, tmp_path, monkeypatch, ":")
    home = tmp_path / "home"
    deploy = ("deploy", "staging", "--target", "cloud", "--home", str(home), "--image")
    code, _, err = invoke(capsys, *deploy, A)
    assert code == 0, err
    return home, deploy
