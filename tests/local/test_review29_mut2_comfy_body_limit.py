"""Mutation audit (session 29): the ComfyUI emulator refuses a POST whose body is over its limit (aiohttp's
client_max_size) at once with aiohttp's 413 text, the body left unread and the connection closed, as ComfyUI does;
one byte under it is read as any other body."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from comfy_support import comfyui
from raw_http import connect, read_all

from goldgate.local.comfyui import ComfyUIEmulator
from goldgate.local.comfyui.server import MAX_BODY_BYTES


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyUIEmulator]:
    with comfyui(tmp_path) as emulator:
        yield emulator


@pytest.mark.parametrize("path", ["/prompt", "/queue"])
def test_a_body_one_byte_over_the_limit_is_refused_unread_with_aiohttps_413(comfy: ComfyUIEmulator, path: str) -> None:
    with connect(comfy.port, timeout_s=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode())   # no body sent: none is read
        answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 413 ", b"HTTP/1.0 413 ")), answer[:300]
    assert body == f"Maximum request body size {MAX_BODY_BYTES} exceeded".encode(), answer[:300]
