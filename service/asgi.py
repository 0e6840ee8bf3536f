"""A thin ASGI shell over the core App (stdlib only): any ASGI server (uvicorn here) can serve it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from service.http import Request, Response, declares_over, resolve_path
from service.ports import StoreUnavailable

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class AsgiService:
    def __init__(self, app: Any, on_shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
        self.app = app
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.on_shutdown is not None:
                    await self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path")
        path = resolve_path(raw_path.decode("latin-1") if raw_path else quote(scope["path"]))  # as the Worker sees it
        query_string = scope.get("query_string", b"").decode("latin-1")
        # Stop reading past the request's limit: the core answers 413. Which limit applies (a signed webhook's
        # differs, and checking its signature costs an HMAC) is asked only once a body has grown past the least
        # any request has: most bodies never do.
        limit = self.app.least_body_limit
        widened = False
        chunks: list[bytes] = []
        size = 0
        # A client waiting for "100 Continue" before it sends a body over the limit is answered at once (the core's
        # 413, or the refusal that comes before it): uvicorn sends that interim answer at the first receive(), which
        # had the client upload the whole body in vain.
        authorization, method = _field(scope, b"authorization"), scope["method"]  # an upload's limit is its token's
        # An upload over its rate limit is answered before any of its body is read, as on the Worker.
        counted = await self.app.count_upload(method, path, authorization, _field(scope, b"traceparent"))
        over_rate = counted if isinstance(counted, Response) else None
        unread = over_rate is not None or (
            _expects_over(scope, limit) and _expects_over(scope, self.app.body_limit(path, query_string,
                                                                                     authorization, method)))
        more = not unread
        while more:
            if size > limit:
                if widened:
                    break
                limit, widened = self.app.body_limit(path, query_string, authorization, method), True
                if size > limit:
                    break
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
        headers: dict[str, str] = {}
        # A value's bytes are read as workerd hands them to the Worker: as UTF-8, a byte that is none becoming U+FFFD
        # (cloudflare/workerd#6927), not as Latin-1, so a non-ASCII value the core quotes back reads the same.
        for k, v in scope.get("headers", []):  # a repeated field is one comma-joined list (RFC 9110 5.3)
            name, value = k.decode("latin-1").lower(), v.decode("utf-8", "replace")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        # A GET or HEAD body has no meaning (RFC 9110 9.3.1); the Worker entry hands the core none, and so does this
        body_in = b"" if scope["method"] in ("GET", "HEAD") else b"".join(chunks)
        request = Request(scope["method"], path, query_string, headers, body_in, rate_counted=counted is True)
        response = over_rate or await self.app.handle(request)
        out_headers = [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in response.headers.items()]
        if more or unread:
            out_headers.append((b"connection", b"close"))  # we did not read the whole body
        body = response.body
        if isinstance(body, (bytes, bytearray)):
            # 204 and 304 have no body and no Content-Length of their own (RFC 9110 8.6): "0" would misstate it
            if response.status not in (204, 304) and "content-length" not in response.headers:
                out_headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
            await send({"type": "http.response.body", "body": bytes(body)})
            return
        await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
        # uvicorn drops what is sent to a client that went away without saying so: only a receive() running
        # beside the stream learns of it, and the store read stops there instead of going to the object's end.
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            async for chunk in body:
                if gone.done():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except StoreUnavailable as exc:
            # The status and Content-Length are out: only a cut connection tells the client the body is not
            # whole, and the server cuts it when the application raises. The log says which download was cut
            # (result.refused: only result downloads stream).
            (response.log or self.app.log).error("result.refused", reason="store_unavailable",
                                                 message=f"{exc}; the client got a cut download and should retry it",
                                                 http={"method": request.method[:16], "path": path[:512],
                                                       "status": response.status})
            raise
        finally:
            gone.cancel()
            if hasattr(body, "aclose"):
                await body.aclose()  # now, not when the garbage collector finds it: it closes the store's stream
        await send({"type": "http.response.body", "body": b""})


def _field(scope: dict[str, Any], name: bytes) -> str | None:
    """A request header's value as the core reads it (a repeated one comma-joined), or None."""
    values = [v.decode("utf-8", "replace") for k, v in scope.get("headers", []) if k.lower() == name]
    return ", ".join(values) if values else None


def _expects_over(scope: dict[str, Any], limit: int) -> bool:
    """Whether the request waits for "100 Continue" (RFC 9110 10.1.1) before sending a body declared over `limit`."""
    fields = dict(scope.get("headers", []))  # the parser refuses a repeated Content-Length
    expect = fields.get(b"expect")
    return (expect is not None and expect.strip().lower() == b"100-continue"
            and declares_over(fields.get(b"content-length", b"").decode("latin-1"), limit))


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone away (the request's body, if any is left, is read and dropped)."""
    while (await receive())["type"] != "http.disconnect":
        pass
