"""The local emulators answer a kept-alive connection at once. Their HTTP shells write the headers and the body
separately; with Nagle's algorithm on, the body waits for the client's delayed ACK (~40 ms on Linux), which every
job pays several times over (the SDK's job-done and pings, each status read), and real RunPod and ComfyUI do not."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest
from ci_policy import needs

from goldgate.local.comfyui import ComfyUIEmulator
from goldgate.local.runpod import EmulatorConfig, RunPodEmulator

pytestmark = needs(Path("/proc/self/fd").is_dir(), "/proc/self/fd (finds the emulator's socket through it)")


@contextmanager
def _runpod(tmp_path: Path) -> Iterator[str]:
    emulator = RunPodEmulator(EmulatorConfig(api_key="rp_test_key", logs_dir=tmp_path / "logs")).start()
    try:
        yield f"{emulator.base_url}/v2/no-such-endpoint/health"
    finally:
        emulator.stop()


@contextmanager
def _comfyui(tmp_path: Path) -> Iterator[str]:
    emulator = ComfyUIEmulator(tmp_path / "models", tmp_path / "out", log_stream=io.StringIO()).start()
    try:
        assert emulator.wait_listening(30)
        yield f"{emulator.url}/queue"
    finally:
        emulator.stop()


def _server_end(client: socket.socket) -> socket.socket:
    """The emulator's end of the client's connection: the emulator runs in this process, so it is one of our fds."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            candidate = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue  # not a socket
        try:
            if (candidate.family == socket.AF_INET and candidate.getsockname() == client.getpeername()
                    and candidate.getpeername() == client.getsockname()):
                return candidate
        except OSError:
            pass  # a listening or unconnected socket
        candidate.close()
    raise AssertionError(f"no socket of this process serves {client.getsockname()}")


@pytest.mark.parametrize("emulator", [_runpod, _comfyui], ids=["runpod", "comfyui"])
def test_an_emulator_sends_each_answer_without_waiting_for_the_clients_ack(
        emulator: Callable[[Path], AbstractContextManager[str]], tmp_path: Path) -> None:
    with emulator(tmp_path) as url, socket.create_connection(("127.0.0.1", httpx.URL(url).port), timeout=30) as client:
        target = httpx.URL(url).raw_path.decode()
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert client.recv(65536).startswith(b"HTTP/1.1 ")  # answered, and the connection is kept alive
        with _server_end(client) as served:
            assert served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), \
                "Nagle is on: the answer's body waits for the client's delayed ACK"
