"""A cloud deploy whose `pulumi up` applied the image and whose rollout watch then failed is recorded as what it is: the
stack took the image, its rollout not confirmed (`history` says so). Unrecorded, the ledger said STAGING ran the image
before while it ran the new one: the STAGING pin on main, the error-rate window and the gate reasoned from that. Driven
through the CLI against the `pulumi` stand-in and the RunPod emulator, whose key is rotated once `up` is done."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloud_support import cloud_staging_deployed
from release_support import invoke
from test_cloud_deployer import KEY, A, emulator, project  # noqa: F401 -- fixtures, used by name

from goldgate.commands import release as release_commands
from goldgate.local.runpod.emulator import RunPodEmulator
from goldgate.release.ledger import Ledger

C = A.replace("a" * 64, "c" * 64)


def test_a_cloud_staging_deploy_whose_watch_failed_after_up_is_recorded_as_taken_unconfirmed(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path,  # noqa: F811
        emulator: RunPodEmulator) -> None:  # noqa: F811
    home, deploy = cloud_staging_deployed(capsys, monkeypatch, project, tmp_path)
    shown = release_commands.progress

    def key_rotated_once_up_is_done(line: str) -> None:
        shown(line)
        if line.strip() == "pulumi: Resources:":   # the program's RunPod calls are over: RunPod rotates the key
            emulator._server.app.api_key = "rp-key-rotated-elsewhere"

    monkeypatch.setattr(release_commands, "progress", key_rotated_once_up_is_done)
    code, _, err = invoke(capsys, *deploy, C)
    assert code != 0
    assert f"goldgate: error: pulumi up applied {C} to staging" in err
    assert err.rstrip().endswith("(ledger #2 records staging on it, its rollout not confirmed)"), err
    deploys = [e for e in Ledger(home).entries() if e.kind == "deploy"]
    assert [(e.get("before"), e.get("after"), e.get("rollout_confirmed")) for e in deploys] == [
        (A, A, None), (A, C, False)]
    assert deploys[-1].get("rollout")["confirmed"] is False and "(HTTP 401)" in deploys[-1].get("error")
    code, out, _ = invoke(capsys, "history", "--home", str(home))
    rows = [line.split() for line in out.splitlines()]
    assert [row[0] for row in rows if "rollout not confirmed" in " ".join(row)] == ["2"], out

    # Once RunPod takes the key again, the deploy again is confirmed, and recorded so.
    emulator._server.app.api_key = KEY
    monkeypatch.setattr(release_commands, "progress", shown)
    code, _, err = invoke(capsys, *deploy, C)
    assert code == 0, err
    again = Ledger(home).entries()[-1]
    assert (again.get("before"), again.get("after")) == (C, C)
    assert again.get("rollout_confirmed") is None and again.get("rollout")["confirmed"] is True
