"""`deploy` to a local stack whose host stops while it redeploys (a failed endpoint PATCH ends the host; so does the
OOM killer). `deploy` went on waiting for a host that was gone, for its whole timeout (120 s from the CLI), and then
said the stack "did not pick up" the image: it says now that the stack stopped, and why when the host said why."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from processes import wait_until

from goldgate.commands.local import WORKER_SOURCE
from goldgate.errors import StateError
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "prod"


def test_deploy_says_the_stack_stopped_when_its_host_goes_while_it_redeploys(home: Path) -> None:
    platform = LocalPlatform(home)
    d = StackDir(home, STACK)
    image = image_store.build_local_image(WORKER_SOURCE, home)  # a local stack runs a snapshot of its home
    try:
        platform.up(STACK)
        host = platform.require_running(STACK)["pid"]
        os.kill(host, signal.SIGSTOP)  # alive, so `deploy` starts; it takes the redeploy signal only when killed
        outcome: list[BaseException | None] = []

        def deploy() -> None:
            try:
                platform.deploy(STACK, image, timeout_s=60)
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 -- handed to the test's thread
                outcome.append(exc)

        deploying = threading.Thread(target=deploy, daemon=True)
        deploying.start()
        assert wait_until(lambda: d.pinned_image() == image, 30), "deploy never pinned the image"
        os.kill(host, signal.SIGKILL)
        deploying.join(90)
        assert outcome, "deploy did not return"
        assert isinstance(outcome[0], StateError), outcome
        assert str(outcome[0]).startswith(f"stack {STACK} stopped while it redeployed {image} (logs: "), outcome[0]
        assert f"`goldgate up {STACK}` starts it again" in str(outcome[0])
    finally:
        platform.down(STACK)  # what is left of it (the `home` fixture kills anything that names the home)


def test_deploy_to_a_host_that_died_since_it_was_found_running_says_the_stack_stopped(home: Path, monkeypatch) -> None:
    import goldgate.local.platform as platform_module

    platform = LocalPlatform(home)
    image = image_store.build_local_image(WORKER_SOURCE, home)  # a local stack runs a snapshot of its home
    real_kill = os.kill

    def kill(pid: int, sig: int) -> None:
        if sig == signal.SIGHUP:  # the host died between `deploy` finding it and signalling it
            raise ProcessLookupError(3, "No such process")
        real_kill(pid, sig)

    try:
        platform.up(STACK)
        monkeypatch.setattr(platform_module.os, "kill", kill)
        try:
            platform.deploy(STACK, image, timeout_s=60)
        except StateError as exc:
            assert str(exc).startswith(f"stack {STACK} stopped while it was told to redeploy {image}"), exc
        else:
            raise AssertionError("deploy to a dead host did not fail")
    finally:
        monkeypatch.undo()
        platform.down(STACK)
