"""The HttpTransport port over httpx (local server); the Worker uses fetch instead."""

from __future__ import annotations

import socket
from collections.abc import Mapping

import httpx

from service.ports import HttpReply, TransportError


class HttpxTransport:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout_s: float) -> HttpReply:
        if self._client is None:  # created inside the serving loop, which it then belongs to
            # TCP_NODELAY: httpx writes headers and body separately; with Nagle on, the body waits
            # for the peer's delayed ACK (~40 ms per call).
            transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=64),
                                                 socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            self._client = httpx.AsyncClient(transport=transport)
        try:
            reply = await self._client.request(method, url, headers=dict(headers), content=body, timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        return HttpReply(reply.status_code, reply.content)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
