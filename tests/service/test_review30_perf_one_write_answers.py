"""An answer leaves the local server in one write: uvicorn writes its head (status line and fields) and its body
separately, which cost every webhook two send(2) calls and sent its client two TCP segments, each waking it. The
edge's transport holds the head until the body's first bytes or the end of the event loop's turn."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from service.local_server import UVICORN_SETTINGS, edge_protocol
from service.logs import Logger

BODY = b'{"applied":true,"reason":"applied","status":"completed"}'


class _RecordingTransport(asyncio.Transport):
    """A connection whose every write is recorded, as the socket would see it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = asyncio.Event()

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed.is_set()

    def close(self) -> None:
        self.closed.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers as the service's ASGI shell does: the head, then the whole body, in two messages."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})


def _answer_writes(request: bytes) -> list[bytes]:
    async def run() -> list[bytes]:
        config = uvicorn.Config(_app, **{**UVICORN_SETTINGS, "http": edge_protocol(Logger(lambda _line: None))})
        config.load()
        protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={},
                                              _loop=asyncio.get_running_loop())
        transport = _RecordingTransport()
        protocol.connection_made(transport)
        protocol.data_received(request)
        await asyncio.wait_for(transport.closed.wait(), 5)  # Connection: close: closed once answered
        protocol.connection_lost(None)
        return transport.writes

    return asyncio.run(run())


def test_a_webhook_answer_leaves_in_one_write_head_and_body_together() -> None:
    body = b'{"id":"rp-1","status":"COMPLETED"}'
    writes = _answer_writes(b"POST /api/runpod/webhook?job=j&sig=s HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                            b"content-type: application/json\r\nconnection: close\r\n"
                            b"content-length: %d\r\n\r\n%s" % (len(body), body))
    assert len(writes) == 1, f"the answer left in {len(writes)} writes: {writes!r}"
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n" + BODY)
