"""POST /api/inputs refusals a client acts on (docs/INTERFACES.md, "Input images"), on both runtimes: an upload
ComfyUI could not open at all (a PNG cut off before its image data, a JPEG of headers and no scan) is refused with
400 `invalid_image` saying what to send instead, never stored for every job naming it to fail, billed; and only a
POST is read as an upload: a PUT or GET there with the token is answered 405 without its megabytes being read
(on the Worker, out of the isolate's budget of uploads)."""

from __future__ import annotations

import asyncio
import io
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from service_testkit import API_TOKEN, edge_in_thread
from test_review32_inputsec_frames import _jpeg_claiming, _mpo
from test_review32_inputsvc_uploads import (  # noqa: F401 - runtime, workflows_dir: fixtures
    AUTH,
    _refused,
    runtime,
    upload,
    workflows_dir,
)
from test_review32_wmem_upload_memory import (  # noqa: F401 - isolate: a fixture
    LIMIT,
    ClientBody,
    answer,
    full_image,
    isolate,
    refused_busy,
    until_waiting,
)
from test_review32_wmem_upload_memory import upload as isolate_upload


def _png_with_metadata() -> bytes:
    info = PngInfo()
    info.add_text("Comment", "c" * 20_000)  # metadata before the image data, as an XMP packet or ICC profile is
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _jpeg_without_scan(seed: int = 0) -> bytes:
    whole = _jpeg_claiming((40, 24), seed)
    return whole[:whole.index(b"\xff\xda")] + b"\xff\xd9"  # its headers, then EOI


# ------------------------------------------------------------------ images ComfyUI could not open


def test_a_png_cut_off_before_its_image_data_is_refused_saying_to_send_the_whole_file(
        runtime: Any) -> None:  # noqa: F811 - the imported fixture
    whole = _png_with_metadata()
    cut = whole[:whole.index(b"IDAT") - 4 - 5000]  # inside the metadata chunk
    _refused(runtime, upload(runtime, cut, "image/png"), 400, "invalid_image", "PNG", "cut short",
             "before its image data (IDAT)", "send the whole file")
    assert upload(runtime, whole, "image/png").status == 201


def test_a_jpeg_of_headers_and_no_scan_is_refused_saying_it_holds_no_picture(
        runtime: Any) -> None:  # noqa: F811 - the imported fixture
    _refused(runtime, upload(runtime, _jpeg_without_scan(), "image/jpeg"), 400, "invalid_image",
             "no image data", "save the image again")


def test_a_multi_picture_jpeg_whose_second_picture_has_no_scan_is_refused() -> None:
    from service.inputs import NotThatImage, read_header

    first = _jpeg_claiming((40, 24))
    assert read_header(_mpo([first, _jpeg_claiming((40, 24), seed=1)]), "image/jpeg").pictures == 2
    with pytest.raises(NotThatImage, match="no image data"):
        read_header(_mpo([first, _jpeg_without_scan(seed=1)]), "image/jpeg")


# ------------------------------------------------------------------ only a POST is an upload


def test_a_put_to_the_upload_route_with_the_token_is_405_on_the_worker_without_its_body_read(
        isolate: Any) -> None:  # noqa: F811 - the imported fixture
    async def scenario() -> None:
        put = ClientBody(full_image())
        request = isolate_upload(put, LIMIT)
        request.method = "PUT"
        status, body, headers = answer(await isolate.fetch(request))
        assert (status, body["error"]["code"], headers["allow"]) == (405, "method_not_allowed", "POST")
        assert put.pulled == 0, "a PUT's body was read as an upload's"

        # Nor does it take any of the isolate's budget of uploads: with two uploads being read, a PUT is still
        # told its method is wrong, not to retry a busy upload.
        go = asyncio.Event()
        reading = [ClientBody(full_image(seed=n), go) for n in (1, 2)]
        held = [isolate.fetch(isolate_upload(body, LIMIT)) for body in reading]
        await until_waiting(*reading)
        await refused_busy(isolate)
        late = isolate_upload(ClientBody(full_image(seed=3)), LIMIT)
        late.method = "PUT"
        assert answer(await isolate.fetch(late))[0] == 405
        go.set()
        assert [answer(await task)[0] for task in held] == [201, 201]

    asyncio.run(scenario())
    isolate.read_log()


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_another_method_on_the_upload_route_with_the_token_is_405_locally_before_its_body_is_sent(
        tmp_path: Path, moto_endpoint: str, fake_runpod: Any, log_lines: list[str], workflows_dir: Path,  # noqa: F811
        method: str) -> None:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines,
                        workflows_dir=str(workflows_dir)) as server:
        # 1 MB declared, over the 64 KiB of any body but an upload's: the client waits for "100 Continue" before it
        # sends it, and is answered at once. Read as an upload's, the body was asked for, then refused unread.
        head = (f"{method} /api/inputs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {API_TOKEN}\r\n"
                "content-type: image/png\r\nexpect: 100-continue\r\ncontent-length: 1000000\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head)
            status_line = sock.makefile("rb").readline()
        assert status_line.startswith(b"HTTP/1.1 405 "), f"the server asked for the body: {status_line!r}"
        # A POST with the token is still read as the upload it is, past 64 KiB
        data = full_image(70_000)
        reply = httpx.post(server.url + "/api/inputs", content=data, headers={**AUTH, "content-type": "image/png"},
                           timeout=30)
        assert reply.status_code == 201 and reply.json()["bytes"] == len(data)
