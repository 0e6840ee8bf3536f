"""Two deploys to one local stack at once (two terminals, or a deploy while `release` deploys): each pinned its image
and signalled the host, which took whichever pin it read last. The other deploy still said its rollout completed and
exited 0, printing "A -> A", and the ledger recorded a deploy of an image the stack did not run. A deploy now holds
the stack while it runs: a second one is refused at once, naming the first, and pins nothing."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path

import pytest
from processes import wait_until

from goldgate.commands.local import WORKER_SOURCE, ensure_up
from goldgate.errors import StateError
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir


def _variant(home: Path, tmp: Path) -> str:
    source = tmp / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write("\n# a change to the worker tree makes a new image\n")
    return image_store.build_local_image(source, home)


def test_a_second_deploy_while_one_runs_is_refused_and_pins_nothing(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    d = StackDir(home, "staging")
    first = ensure_up(platform, "staging").image
    second = _variant(home, tmp_path)
    host = platform.require_running("staging")["pid"]
    outcome: list[BaseException | None] = []

    def deploy() -> None:
        try:
            platform.deploy("staging", second, timeout_s=120)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test's thread
            outcome.append(exc)

    os.kill(host, signal.SIGSTOP)  # alive, so the first deploy pins and then waits for it
    deploying = threading.Thread(target=deploy, daemon=True)
    try:
        deploying.start()
        assert wait_until(lambda: d.pinned_image() == second, 30), "the first deploy never pinned its image"
        with pytest.raises(StateError) as refused:
            platform.deploy("staging", first, timeout_s=5)
        said = str(refused.value)
        assert said.startswith(f"a deploy to staging (pid {os.getpid()}"), said
        assert "nothing was pinned" in said and "\n" not in said
        assert d.pinned_image() == second  # the refused deploy moved nothing
    finally:
        os.kill(host, signal.SIGCONT)
        deploying.join(150)
    try:
        assert outcome == [None], outcome
        status = platform.status("staging")
        assert status.image == second and platform.require_running("staging")["image"] == second
        # Once the first is done, a deploy goes through.
        assert platform.deploy("staging", first).image == first
    finally:
        platform.down("staging")
