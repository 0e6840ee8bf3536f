"""Rotating a local stack's API token without downtime: the operator copies the old token into
`secrets/api_token_previous`, writes a new one into `secrets/api_token`, and redeploys; a client still holding the old
token is served (its request's line says `data.token: "previous"`) until the operator deletes the file and applies
that. Before, the stack's service took one token: the old one was answered 401 from the moment the new one applied.
The file is the operator's (never made by `up`), kept private, and refused by its name, never its value, wherever the
service would refuse it at its start."""

from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

import httpx
import pytest
from ci_policy import needs
from stackfiles import stacks_file

from goldgate.commands.local import WORKER_SOURCE
from goldgate.errors import StateError
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "staging"
OLD = "7c2e9a4f1b3d5e6a8c0b2d4f6a8c0e1f"


def _workflows(api_url: str, token: str) -> int:
    return httpx.get(f"{api_url}/api/workflows", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code


@needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")
def test_a_rotated_api_token_serves_clients_holding_the_old_one_until_the_previous_file_goes(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_max": 1}))
    d = StackDir(home, STACK)
    image = image_store.build_local_image(WORKER_SOURCE, home)
    d.pin(image, reason="test")
    platform.up(STACK, timeout_s=90)
    try:
        old = platform.api_token(STACK)
        api_url = platform.status(STACK).api_url
        assert _workflows(api_url, old) == 200

        # The rotation, as the runbook says: previous = current, a new current, then a deploy of what runs.
        new = secrets.token_hex(32)
        d.secret_file("api_token_previous").write_text(old + "\n")
        d.secret_file("api_token").write_text(new + "\n")
        said: list[str] = []
        platform.up(STACK, progress=said.append)  # a running stack is left as it is: it says what applies them
        assert said[0] == f"{STACK}: already up" and "secrets/api_token_previous" in said[1], said
        platform.deploy(STACK, image, timeout_s=120)
        assert (_workflows(api_url, old), _workflows(api_url, new)) == (200, 200)  # neither client is turned away
        assert _workflows(api_url, secrets.token_hex(32)) == 401

        # The old token has drained: the file goes, and the next deploy refuses the old token again.
        d.secret_file("api_token_previous").unlink()
        platform.deploy(STACK, image, timeout_s=120)
        assert (_workflows(api_url, old), _workflows(api_url, new)) == (401, 200)
    finally:
        platform.down(STACK)

    lines = [json.loads(line) for line in (d.logs_dir / "service.jsonl").read_text().splitlines()
             if line.startswith("{")]
    reads = [(x["http"]["status"], (x.get("data") or {}).get("token")) for x in lines
             if (x.get("http") or {}).get("path") == "/api/workflows"]
    assert reads == [(200, None), (200, "previous"), (200, None), (401, None), (401, None), (200, None)], reads
    for log in d.logs_dir.iterdir():  # neither token in any of the stack's logs
        text = log.read_text(errors="replace")
        assert old not in text and new not in text, log.name


def _stack(home: Path) -> StackDir:
    d = StackDir(home, "prod")
    d.ensure()
    return d


def test_up_makes_no_previous_token_and_one_written_by_hand_is_kept_private(home: Path) -> None:
    d = _stack(home)
    assert not d.secret_file("api_token_previous").exists() and d.api_token_previous() is None
    path = d.secret_file("api_token_previous")
    path.write_text(f"  {OLD}\n")  # by hand: an editor's line break, and the umask's mode
    path.chmod(0o644)
    d.ensure()
    assert d.api_token_previous() == OLD
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("value", "says"), [
    ("", "is empty: fix it (the old token, alone on one line) or remove it"),
    (OLD[:15], "is shorter than 16 characters, which the service refuses"),
    ("api_token", "holds the same value as the current API token"),
    ("webhook_secret", "holds the same value as a webhook secret"),
    ("webhook_secret_previous", "holds the same value as a webhook secret"),
])
def test_a_previous_token_the_service_cannot_use_is_refused_by_its_file(home: Path, value: str, says: str) -> None:
    d = _stack(home)
    d.secret_file("webhook_secret_previous").write_text(secrets.token_hex(32))
    text = d.secret(value) if value in ("api_token", "webhook_secret") else (
        d.secret_file(value).read_text() if value == "webhook_secret_previous" else value)
    d.secret_file("api_token_previous").write_text(text)
    with pytest.raises(StateError) as refused:
        d.ensure()  # what `goldgate up` and a deploy run before any host or service starts
    said = str(refused.value)
    assert str(d.secret_file("api_token_previous")) in said and says in said and "\n" not in said, said
    assert not text.strip() or text.strip()[:15] not in said
