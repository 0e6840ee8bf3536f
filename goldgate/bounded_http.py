"""One HTTP answer read into memory no further than a limit (the cloud API clients' shared reader)."""

from __future__ import annotations

import httpx


class ResponseTooLarge(Exception):
    """An answer longer than the limit: reading stopped there. `status` is the answer's HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def send_bounded(client: httpx.Client, request: httpx.Request, limit: int) -> tuple[httpx.Response, bytes]:
    """The response to `request` and its body, read as it streams in (so a streamed page is let go as soon as it
    is read) and never past `limit` bytes: a body without end (a proxy) ends the call, not the machine's memory."""
    response = client.send(request, stream=True)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(response.status_code)
            chunks.append(chunk)
    finally:
        response.close()
    return response, b"".join(chunks)
