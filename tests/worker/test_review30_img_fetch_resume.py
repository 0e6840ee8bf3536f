"""fetch_model.py resumes a cut-short download: the flux model is 23.8 GB, and a connection lost near its end must not
cost the build all of it again. Against an HTTP server on 127.0.0.1 that serves ranges as a CDN does."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from test_fetch_model import fetch

MODEL = bytes(range(256)) * 4096   # 1 MiB, every byte at its place distinct enough to show a misplaced range
MODEL_SHA256 = hashlib.sha256(MODEL).hexdigest()
CUT_AT = 700_000
ETAG = '"' + MODEL_SHA256 + '"'


class _Ranges(BaseHTTPRequestHandler):
    """Announces the whole model and closes the connection after CUT_AT bytes, once; then serves `Range: bytes=N-`
    with a 206 when `If-Range` is its ETag. `wrong_start` makes it answer a range from another byte than asked."""
    cuts_left: ClassVar[int] = 1
    wrong_start: ClassVar[bool] = False
    requests: ClassVar[list[dict[str, str | None]]] = []
    served: ClassVar[int] = 0

    def do_GET(self) -> None:
        asked = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        type(self).requests.append({"range": self.headers.get("Range"), "if-range": self.headers.get("If-Range")})
        start = int(asked.group(1)) if asked and self.headers.get("If-Range") == ETAG else 0
        if start:
            start = start - 1000 if type(self).wrong_start else start
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(MODEL) - 1}/{len(MODEL)}")
        else:
            self.send_response(200)
        body = MODEL[start:]
        self.send_header("ETag", ETAG)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).cuts_left > 0:
            type(self).cuts_left -= 1
            body = body[:CUT_AT]
            self.close_connection = True
        self.wfile.write(body)
        type(self).served += len(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def ranges() -> Iterator[str]:
    _Ranges.cuts_left, _Ranges.wrong_start, _Ranges.requests, _Ranges.served = 1, False, [], 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ranges)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("pin", [MODEL_SHA256, "-"])
def test_a_download_cut_short_resumes_where_it_ended(ranges: str, tmp_path: Path, pin: str) -> None:
    dest = tmp_path / "models" / "diffusion_models" / "model.safetensors"
    done = fetch(f"{ranges}/model.safetensors", pin, dest)
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == MODEL
    assert MODEL_SHA256 in done.stdout + done.stderr
    # The retry asked for the rest only, and only if the file was still the one the first bytes came from.
    assert _Ranges.requests == [{"range": None, "if-range": None}, {"range": f"bytes={CUT_AT}-", "if-range": ETAG}]
    assert _Ranges.served == len(MODEL)
    assert f"resuming {ranges}/model.safetensors at byte {CUT_AT}" in done.stderr
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]


def test_a_range_answered_from_another_byte_is_not_spliced_in(ranges: str, tmp_path: Path) -> None:
    # Appending a range that starts elsewhere would bake a model with bytes repeated (the pin catches it only after
    # the whole download; an unpinned LoRA would ship it): the download starts over instead.
    _Ranges.wrong_start = True
    dest = tmp_path / "model.safetensors"
    done = fetch(f"{ranges}/model.safetensors", "-", dest)
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == MODEL
    assert f"answered the range from byte {CUT_AT} with 'bytes {CUT_AT - 1000}-" in done.stderr
    assert [r["range"] for r in _Ranges.requests] == [None, f"bytes={CUT_AT}-", None]
