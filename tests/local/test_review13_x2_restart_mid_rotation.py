"""A local service that dies while the webhook secret is rotated (RUNBOOK, between its step 1, the current secret
copied into `secrets/webhook_secret_previous`, and step 2, a new current one) is started again on the config it ran
with, and the host says which file it could not use. Before, the host's restart read the half-rotated files, the
refusal escaped its loop, and the whole stack went down: state.json said failed, the RunPod emulator and the jobs
in flight were stopped. A real stack: its service process is killed as a crash would end it."""

from __future__ import annotations

import json
import os
import secrets
import signal
from pathlib import Path

import httpx
from ci_policy import needs
from processes import processes_naming, wait_until
from stackfiles import stacks_file

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

STACK = "staging"


def _host_lines(d: StackDir) -> list[dict]:
    return [json.loads(line) for line in (d.logs_dir / "stackhost.jsonl").read_text().splitlines()
            if line.startswith("{")]


def test_a_service_that_dies_mid_rotation_is_restarted_on_its_config_and_the_stack_stays_up(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_max": 1}))
    d = StackDir(home, STACK)
    d.ensure()
    d.pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    earlier = secrets.token_hex(32)  # a rotation under way when the stack starts: its service verifies this one too
    d.secret_file("webhook_secret_previous").write_text(earlier + "\n")
    platform.up(STACK, timeout_s=90)
    try:
        state = platform.require_running(STACK)
        host, dead = state["pid"], state["service_pid"]
        ran_with = json.loads((d.root / "service.json").read_text())
        assert ran_with["webhook_secret_previous"] == earlier
        current = d.secret("webhook_secret")

        # The next rotation's step 1: the current secret copied into the previous file (refused until step 2).
        d.secret_file("webhook_secret_previous").write_text(current + "\n")
        os.kill(dead, signal.SIGKILL)
        assert wait_until(lambda: (platform.require_running(STACK).get("service_pid") or dead) != dead, 60), \
            "the service was not started again"

        state = platform.require_running(STACK)
        assert state["status"] == "ready" and state["pid"] == host
        assert "goldgate.local.stackhost" in processes_naming(str(home))[host]
        restarted = state["service_pid"]
        assert "service.local_server" in processes_naming(str(home))[restarted]
        health = httpx.get(f"{state['api_url']}/healthz", timeout=30)
        assert health.status_code == 200 and health.json()["stack"] == STACK
        workflows = httpx.get(f"{state['api_url']}/api/workflows", timeout=30,
                              headers={"Authorization": f"Bearer {platform.api_token(STACK)}"})
        assert workflows.status_code == 200, workflows.text
        # It runs on what the dead one read: the earlier previous secret still verifies what was signed with it.
        assert json.loads((d.root / "service.json").read_text()) == ran_with
        said: list[str] = []
        platform.up(STACK, progress=said.append)  # the rotated files are still not applied, and it says so
        assert len(said) == 2 and "secret files changed" in said[1] and "the next start would refuse them" in said[1], said

        refused = [x for x in _host_lines(d) if x["event"] == "service.config_refused"]
        assert len(refused) == 1 and refused[0]["level"] == "error", refused
        assert str(d.secret_file("webhook_secret_previous")) in refused[0]["message"]
        assert "holds the same value as" in refused[0]["message"]
        assert refused[0]["data"]["config"] == str(d.root / "service.json")
    finally:
        platform.down(STACK)
    for log in d.logs_dir.iterdir():  # neither secret in any of the stack's logs
        text = log.read_text(errors="replace")
        assert current not in text and earlier not in text, log.name
