"""The HttpTransport port over httpx (local server); the Worker uses fetch instead."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from service.ports import HttpReply, TransportError


class HttpxTransport:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout_s: float) -> HttpReply:
        if self._client is None:  # created inside the serving loop, which it then belongs to
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=64))
        try:
            reply = await self._client.request(method, url, headers=dict(headers), content=body, timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        return HttpReply(reply.status_code, reply.content)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
