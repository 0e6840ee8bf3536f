"""A stack's secret file edited into something no credential is (a line break, a space or a non-ASCII letter
inside). The API token and the RunPod key go in an Authorization header, the S3 key id in a signed one: sent as
they were, httpx failed with the whole header, the secret, in its error. The one reader of these files refuses such
a value by the file's name, never its value, and `up` refuses it before it starts a host."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import SECRET_NAMES, StackDir

STACK = "prod"
HALVES = ("0f1e2d3c4b5a69788796a5b4c3d2e1f0", "aa55aa55aa55aa55aa55aa55aa55aa55")


@pytest.mark.parametrize("inside", ["\n", " ", "\r\n", "\t", "é"])
@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_secret_with_a_character_no_credential_has_is_refused_by_its_file(home: Path, name: str,
                                                                           inside: str) -> None:
    d = StackDir(home, STACK)
    d.ensure()
    d.secret_file(name).write_text(inside.join(HALVES) + "\n")
    with pytest.raises(StateError) as refused:
        d.secret(name)
    said = str(refused.value)
    assert str(d.secret_file(name)) in said and f"goldgate up {STACK}" in said, said
    assert not any(half in said for half in HALVES), "the secret must never be in the message"


def test_up_refuses_an_edited_token_in_one_line_and_starts_no_host(home: Path) -> None:
    d = StackDir(home, STACK)
    d.ensure()
    d.secret_file("api_token").write_text("\n".join(HALVES))
    with pytest.raises(StateError) as refused:
        LocalPlatform(home).up(STACK, timeout_s=60)
    assert str(refused.value) == (
        f"{d.secret_file('api_token')} holds a character no API token has (a space, a line break or a non-ASCII "
        f"letter inside it): write the token on one line, or empty the file and run `goldgate down {STACK}` and "
        f"`goldgate up {STACK}` to make a new one")
    assert "\n" not in str(refused.value)
    assert not any(half in str(refused.value) for half in HALVES)
    assert not d.state_file.exists(), "no host was started"


def test_the_token_a_client_sends_never_reaches_an_http_error(home: Path) -> None:
    # What every caller of the platform's token does (the CLI, the golden runner, the checklist's live probe):
    # put it in an Authorization header. The value it is given must be one a header can carry.
    d = StackDir(home, STACK)
    d.ensure()
    d.secret_file("api_token").write_text("\n".join(HALVES))
    platform = LocalPlatform(home)
    try:
        token = platform.api_token(STACK)
    except StateError as exc:
        assert not any(half in str(exc) for half in HALVES)
        return
    with socket.create_server(("127.0.0.1", 0)) as listener:  # takes the connection: the request is written
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        try:
            httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=2)
        except Exception as exc:  # noqa: BLE001 -- whichever error it is, the token must not be in it
            assert not any(half in str(exc) for half in HALVES), f"the token is in the error: {exc}"


def test_whitespace_around_a_secret_is_not_part_of_it(home: Path) -> None:
    d = StackDir(home, STACK)
    d.ensure()
    d.secret_file("runpod_api_key").write_text(f"  {HALVES[0]}\r\n")
    assert d.secret("runpod_api_key") == HALVES[0]
