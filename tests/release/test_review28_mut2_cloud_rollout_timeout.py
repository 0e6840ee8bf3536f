"""A cloud deploy whose `pulumi up` applied the image and whose rollout then did not finish within the deploy's
rollout timeout is recorded as what it is: the stack took the image, its rollout not confirmed. (Recorded as a
deploy that failed, the ledger would say STAGING still ran the image before.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import invoke
from test_cloud_deployer import A, cloud_staging, emulator, project  # noqa: F401 -- fixtures, used by name

from goldgate.local.runpod.emulator import RunPodEmulator
from goldgate.release.deployers import cloud as cloud_deployer
from goldgate.release.ledger import Ledger

C = A.replace("a" * 64, "c" * 64)


def test_a_rollout_that_timed_out_after_up_is_recorded_as_taken_unconfirmed(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path,  # noqa: F811
        emulator: RunPodEmulator) -> None:  # noqa: F811
    cloud_staging(project, tmp_path, monkeypatch, ":")
    home = tmp_path / "home"
    deploy = ("deploy", "staging", "--target", "cloud", "--home", str(home), "--image")
    code, _, err = invoke(capsys, *deploy, A)
    assert code == 0, err

    def timed_out(_client: object, endpoint_id: str, image: str, **_kw: object) -> dict:
        raise cloud_deployer.RolloutTimedOut(f"rollout of endpoint {endpoint_id} did not finish within 600 s "
                                             f"(rolling; endpoint image {A}); the config pins {image}")

    monkeypatch.setattr(cloud_deployer, "wait_for_rollout", timed_out)
    code, _, err = invoke(capsys, *deploy, C)
    assert code != 0
    assert f"goldgate: error: pulumi up applied {C} to staging" in err, err
    assert "did not finish within 600 s" in err and "(ledger #2 records staging on it, its rollout not confirmed)" in err
    deploys = [e for e in Ledger(home).entries() if e.kind == "deploy"]
    assert [(e.get("after"), e.get("rollout_confirmed")) for e in deploys] == [(A, None), (C, False)]
