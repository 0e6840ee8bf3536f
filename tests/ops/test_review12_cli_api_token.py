"""The local stack's API token as `goldgate recover` and `goldgate demo` send it: a token file edited by hand with a
line break, space or non-ASCII letter inside put the whole Authorization header, the token, in the error line (or
ended in a UnicodeEncodeError traceback). It is refused by the file's name, and the token is never shown."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.commands import local
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

JOB_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def listening_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A loopback port that takes connections, as a stack's API would: the request is built and sent to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        monkeypatch.setattr(LocalPlatform, "require_running", lambda _self, _stack: {"api_url": url})
        yield url


def token_file(home: Path, text: str) -> Path:
    path = StackDir(home, "staging").secret_file("api_token")
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("token", ["first-half-of-token\nsecond-half-of-token", "first-half-of-token second-half",
                                   "first-half-of-token\rsecond-half", "first-half-of-tokén-second-half"],
                         ids=["line-break", "space", "carriage-return", "non-ascii"])
def test_a_token_no_header_can_carry_is_refused_by_its_file_never_shown(
        capsys: pytest.CaptureFixture, tmp_path: Path, listening_api: str, token: str) -> None:
    home = tmp_path / "home"
    path = token_file(home, token + "\n")
    code = main(["recover", JOB_ID, "--stack", "staging", "--home", str(home)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "first-half-of-tok" not in err and "second-half" not in err
    assert err.splitlines() == [(
        f"goldgate: error: {path} holds a character no API token has (a space, a line break or a non-ASCII letter "
        "inside it): write the token on one line, or empty the file and run `goldgate down staging` and "
        "`goldgate up staging` to make a new one")]


def test_a_token_with_a_trailing_line_break_is_still_sent(tmp_path: Path, listening_api: str) -> None:
    # A key file's line break (or a CRLF editor's) is around the token, not in it: the token is sent without it.
    token_file(tmp_path / "home", "a" * 64 + "\r\n")
    client = local.ApiClient(LocalPlatform(tmp_path / "home"), "staging", timeout_s=0.2)
    try:
        assert client.http.headers["authorization"] == "Bearer " + "a" * 64
    finally:
        client.close()
