"""fetch_model.py and a source that wants credentials (a gated Hugging Face model answers 401, or 403 to a token whose
account has not accepted the license): the build's line says so, and says where a token must not go."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_fetch_model import MODEL_SHA256, fetch


class _Gated(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(int(self.path.strip("/").split("/")[0]))

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def gated() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Gated)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("code", [401, 403])
def test_a_source_that_wants_credentials_is_named_so_and_no_token_goes_into_a_build_arg(gated: str, tmp_path: Path,
                                                                                       code: int) -> None:
    # Before, "check source_url in models.yaml" alone: the URL was right, and the way out a team then takes (ARG
    # HF_TOKEN, --build-arg) ships the token in the image's history to everyone who can pull it.
    dest = tmp_path / "models" / "diffusion_models" / "flux1-dev.safetensors"
    done = fetch(f"{gated}/{code}/flux1-dev.safetensors", MODEL_SHA256, dest)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()   # no retry: credentials do not come by waiting
    assert line.startswith(f"fetch_model: GET {gated}/{code}/flux1-dev.safetensors answered {code} "), line
    assert "gated or private" in line and "--build-arg" in line and "docker history --no-trunc" in line
    assert "Traceback" not in done.stderr
    assert not dest.exists() and list(dest.parent.iterdir()) == []
