"""A local stack's API token and webhook secret are checked by goldgate as the service checks them (each at least
SECRET_MIN_CHARS, the two different), by their files' names and never their values. Before, only the previous
webhook secret was: a current one written too short by hand (a rotation's step 2 done badly) took the whole stack
down when its service was restarted (the service exited with code 2, the host failed, the jobs in flight with it),
and `goldgate up` said only "RuntimeError: the service exited with code 2 ... see service.jsonl". A real stack."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from ci_policy import needs
from processes import processes_naming, wait_until
from stackfiles import stacks_file

from goldgate.commands.local import WORKER_SOURCE
from goldgate.errors import StateError
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

STACK = "staging"


def _host_lines(d: StackDir) -> list[dict]:
    path = d.logs_dir / "stackhost.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_a_service_that_dies_on_a_current_secret_it_would_refuse_is_restarted_and_the_stack_stays_up(
        home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_max": 1}))
    d = StackDir(home, STACK)
    d.ensure()
    d.pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up(STACK, timeout_s=90)
    try:
        state = platform.require_running(STACK)
        host = state["pid"]
        ran_with = json.loads((d.root / "service.json").read_text())
        current, token = d.secret("webhook_secret"), d.secret("api_token")

        # A rotation's step 1, then its step 2 done badly by hand: a new current secret far too short.
        d.secret_file("webhook_secret_previous").write_text(current + "\n")
        d.secret_file("webhook_secret").write_text("tooshort\n")
        # ... and, the next time the service dies, the API token pasted in as the new current secret.
        for bad, clause in (("tooshort", "is shorter than 16 characters"), (token, "hold the same value")):
            d.secret_file("webhook_secret").write_text(bad + "\n")
            dead = platform.require_running(STACK)["service_pid"]
            os.kill(dead, signal.SIGKILL)
            assert wait_until(lambda dead=dead: (platform.require_running(STACK).get("service_pid") or dead) != dead,
                              60), "the service was not started again"
            state = platform.require_running(STACK)
            assert state["status"] == "ready" and state["pid"] == host
            assert "goldgate.local.stackhost" in processes_naming(str(home))[host]
            assert "service.local_server" in processes_naming(str(home))[state["service_pid"]]
            workflows = httpx.get(f"{state['api_url']}/api/workflows", timeout=30,
                                  headers={"Authorization": f"Bearer {token}"})
            assert workflows.status_code == 200, workflows.text
            assert json.loads((d.root / "service.json").read_text()) == ran_with  # the config it ran with

            refused = [x for x in _host_lines(d) if x["event"] == "service.config_refused"]
            assert refused and refused[-1]["level"] == "error", refused
            assert str(d.secret_file("webhook_secret")) in refused[-1]["message"], refused[-1]
            assert clause in refused[-1]["message"], refused[-1]
        events = [x["event"] for x in _host_lines(d)]
        assert "stack.failed" not in events and events.count("service.config_refused") == 2, events
    finally:
        platform.down(STACK)
    for log in d.logs_dir.iterdir():  # no secret in any of the stack's logs
        text = log.read_text(errors="replace")
        assert current not in text and token not in text, log.name


@pytest.mark.parametrize(("name", "value", "clause"), [
    ("webhook_secret", "tooshort", "is shorter than 16 characters, which the service refuses"),
    ("api_token", "short-token-015", "is shorter than 16 characters, which the service refuses"),
    ("webhook_secret", None, "hold the same value, which the service refuses"),
])
def test_up_of_a_stopped_stack_names_the_secret_file_the_service_would_refuse_before_a_host_starts(
        home: Path, name: str, value: str | None, clause: str) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(home, STACK)
    d.ensure()
    token = d.secret("api_token")
    d.secret_file(name).write_text((value or token) + "\n")
    with pytest.raises(StateError) as refused:
        platform.up(STACK, timeout_s=90)
    message = str(refused.value)
    assert str(d.secret_file(name)) in message and clause in message, message
    assert "exited with code" not in message
    assert token not in message and (value is None or value not in message)
    words = message.replace(str(d.root), "").replace("16 characters", "").replace("-hex 32", "")
    assert str(len(value or token)) not in words  # nor its length
    assert not _host_lines(d) and not d.state_file.exists()  # no host started
    assert d.secret(name) == (value or token)  # the operator's file is left as it is


def test_the_stack_refuses_exactly_the_secrets_the_service_refuses(home: Path) -> None:
    """One rule (service/config.py): a pair goldgate takes never stops the service, and goldgate refuses no pair
    the service would take."""
    from service.config import ConfigError, ServiceConfig

    d = StackDir(home, STACK)
    d.ensure()
    base = {"stack": STACK, "runpod_api_key": "rp", "runpod_endpoint_base": "https://api.runpod.ai/v2/ep",
            "public_base_url": "https://api.example.com"}
    for token, webhook in (("t" * 16, "w" * 15), ("t" * 15, "w" * 16), ("t" * 15, "w" * 3), ("t" * 16, "w" * 16),
                           ("s" * 20, "s" * 20), ("s" * 16, "s" * 17)):
        d.secret_file("api_token").write_text(token)
        d.secret_file("webhook_secret").write_text(webhook)
        try:
            ServiceConfig.from_mapping({**base, "api_token": token, "webhook_secret": webhook})
            service_takes = True
        except ConfigError:
            service_takes = False
        try:
            stack_takes = d.current_secrets() == (token, webhook)
        except StateError:
            stack_takes = False
        assert stack_takes == service_takes, (len(token), len(webhook), token == webhook)
