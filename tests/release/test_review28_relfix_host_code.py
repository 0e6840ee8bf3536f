"""`deploy`, `promote` and `rollback` on a local stack whose host runs older goldgate code than the checkout say so, as
`up`, `release` and `status` do, and go on: the deploy starts the stack's service afresh on the checkout's code (the
host's SIGHUP reload spawns a new service process), so what is released is the checkout's; only the host itself (the
stand-ins for RunPod and R2) keeps the old code until `goldgate down <stack> && goldgate up <stack>`, which ends the
jobs in flight and is the operator's to run. Before, those three commands said nothing of it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from promotion_support import released
from release_support import invoke
from test_promotion_evidence import A, B

from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir, write_json_atomic
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths

OLD_HOST = ("its host runs the goldgate code it started with, which this checkout has changed since "
            "(goldgate/local/stackhost.py: an upgrade, or an edit); `goldgate down prod && goldgate up prod` runs this "
            "checkout's (the local RunPod's jobs in flight end with it; `goldgate recover` settles them)")


class OldHost:
    """What the release code reads of a local platform: PROD up, its host on older code than the checkout."""

    def __init__(self, pins: dict[str, str]) -> None:
        self.pins = pins

    def status(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(running=True, image=self.pins.get(stack))

    def code_changed(self, stack: str) -> str | None:
        return OLD_HOST if stack == "prod" else None


def test_promote_and_rollback_onto_a_host_running_older_code_say_so_and_go_on(tmp_path: Path,
                                                                              paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, staging_passed=B) as r:
        home, ledger, target = r.home, r.ledger, r.target
        target.platform = OldHost(target.pins)   # type: ignore[attr-defined]
        said: list[str] = []
        assert promote(target, ledger, home, paths=paths, progress=said.append).ok
        assert rollback(target, ledger, home, paths=paths, progress=said.append).ok
    warned = [line for line in said if "older" in line or "code it started with" in line]
    assert warned == [f"warning: prod: {OLD_HOST}; this {doing} starts prod's service on this checkout's code, with "
                      "the settings its host read when it started, while its host (the local RunPod and its webhooks, "
                      "the result store) keeps running the old until that restart" for doing in ("promotion", "rollback")
                      ], said
    assert said.index(warned[0]) < next(i for i, line in enumerate(said) if line.startswith("gate passed"))
    assert target.pins["prod"] == A


def test_a_deploy_to_a_local_stack_whose_host_an_older_goldgate_started_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    home.mkdir()
    platform = LocalPlatform(home)
    try:
        image = ensure_up(platform, "staging").image
        state_file = StackDir(home, "staging").state_file
        state = json.loads(state_file.read_text())
        state.pop("code")   # as a host of a goldgate that kept no code record writes it
        write_json_atomic(state_file, state)
        assert platform.status("staging").code_changed is not None
        code, _, err = invoke(capsys, "deploy", "staging", "--home", str(home), "--image", str(image))
        assert code == 0, err
        # What the warning says the deploy did: a new service process, which runs the checkout's files as they are.
        assert json.loads(state_file.read_text())["service_pid"] != state["service_pid"]
        [line] = [line for line in err.splitlines() if "older goldgate" in line]
        assert "warning: staging: its host was started by an older goldgate, whose code it still runs" in line
        assert "`goldgate down staging && goldgate up staging` runs this checkout's" in line
        assert "this deploy starts staging's service on this checkout's code" in line
    finally:
        platform.down("staging")
