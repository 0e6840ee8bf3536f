"""`goldgate demo` downloads each result from the link its status answer gives, and sends the stack's API token
only to the API's own origin: a link naming another host got the bearer token too (ApiClient's default header),
where the golden runner's fetch already kept it to the API's origin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from goldgate.commands import local
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

TOKEN = "c" * 64


class _Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[str | None] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.seen.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"\x89PNG")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[local.ApiClient, _Recorder, _Recorder]]:
    api, other = _Recorder(), _Recorder()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (api, other)]
    for thread in threads:
        thread.start()
    home = tmp_path / "home"
    path = StackDir(home, "staging").secret_file("api_token")
    path.parent.mkdir(parents=True)
    path.write_text(TOKEN + "\n", encoding="utf-8")
    path.chmod(0o600)
    monkeypatch.setattr(LocalPlatform, "require_running", lambda _self, _stack: {"api_url": api.url})
    client = local.ApiClient(LocalPlatform(home), "staging", timeout_s=10)
    try:
        yield client, api, other
    finally:
        client.close()
        for server in (api, other):
            server.shutdown()
            server.server_close()


def test_a_result_link_on_another_host_is_fetched_without_the_api_token(servers) -> None:
    client, api, other = servers
    assert client.download(f"{other.url}/results/x/0.png?exp=1&sig=ab", "results/x/0.png") == b"\x89PNG"
    assert other.seen == [None]
    assert api.seen == []


def test_a_result_link_on_the_apis_own_origin_still_carries_the_token(servers) -> None:
    client, api, other = servers
    assert client.download("/api/result/results/x/0.png?exp=1&sig=ab", "results/x/0.png") == b"\x89PNG"
    assert client.download(f"{api.url}/api/result/results/x/1.png", "results/x/1.png") == b"\x89PNG"
    assert api.seen == [f"Bearer {TOKEN}"] * 2
    assert other.seen == []
