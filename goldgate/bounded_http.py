"""One HTTP answer read into memory no further than a limit and no later than a deadline (the cloud API
clients' shared reader)."""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable

import httpx

# A transfer of a whole file (a D1 export or import, an R2 backup) may take hours: its deadline grows with
# its size. 10 minutes for the exchange itself (a signed URL's first byte, R2's commit of a 5 GiB PUT), then
# at least 512 KiB/s (4 Mbit/s, a slow office uplink): a 10 GB D1 dump gets 5.5 hours; a peer trickling
# bytes is let go.
TRANSFER_ALLOWANCE_S = 600.0
TRANSFER_MIN_BYTES_PER_S = 512 * 1024


# The httpx failures raised before a request left this machine: the connection was refused or not set up in
# time, the pool had no connection free in time, or a proxy refused the tunnel (or could not reach the host).
# Nothing was sent, so even a POST that must not run twice may be tried again, and when none gets through,
# nothing was applied. Every other TransportError may have come after the request was sent.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context this process's HTTP clients verify servers with: httpx's own default (certifi's CAs, or
    SSL_CERT_FILE / SSL_CERT_DIR), built once. httpx builds one for every Client, loading the whole CA bundle
    (about 45 ms of CPU) even for a client that only speaks plain HTTP to 127.0.0.1: `goldgate status` made one
    per RunPod control-plane client, and a deploy polled it. One SSLContext serves any number of clients."""
    return httpx.create_ssl_context()


def transfer_deadline_s(size: int) -> float:
    """How long moving `size` bytes to or from object storage may take before it counts as stalled."""
    return TRANSFER_ALLOWANCE_S + max(0, size) / TRANSFER_MIN_BYTES_PER_S


def bearer_token(value: str) -> str | None:
    """`value` without the whitespace around it (a key file's line break, a CRLF .env file's carriage return),
    or None when what is left cannot go in an Authorization header: a space, control or non-ASCII character
    inside. Sent as it was, httpx would fail with the whole header, the secret, in its message."""
    token = value.strip()
    return token if all("!" <= c <= "~" for c in token) else None


def format_seconds(value: float) -> str:
    """A deadline for a message: whole seconds, or the fraction a test's short deadline has."""
    return f"{value:.0f} s" if value >= 10 else f"{value:g} s"


class ResponseTooLarge(Exception):
    """An answer longer than the limit: reading stopped there. `status` is the answer's HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class DeadlinePassed(Exception):
    """The answer had not fully arrived when the call's deadline passed: reading stopped there. `status` is
    the answer's HTTP status (None when not even its headers had come) and `received` the body bytes read."""

    def __init__(self, status: int | None, received: int, deadline_s: float) -> None:
        super().__init__(status, received, deadline_s)
        self.status, self.received, self.deadline_s = status, received, deadline_s


def send_bounded(client: httpx.Client, request: httpx.Request, limit: int, deadline_s: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> tuple[httpx.Response, bytes]:
    """The response to `request` and its body, read as it streams in (so a streamed page is let go as soon as
    it is read) and never past `limit` bytes: a body without end (a proxy) ends the call, not the machine's
    memory.

    httpx's read timeout is per read, so a peer sending a byte now and then would keep a call going for hours;
    `deadline_s` bounds the whole exchange, checked as each piece of the body arrives (no single read waits
    longer than the deadline either)."""
    if deadline_s is None:
        deadline = float("inf")
    else:
        deadline = clock() + deadline_s
        timeouts = dict(request.extensions.get("timeout") or {})
        read = timeouts.get("read")
        timeouts["read"] = deadline_s if read is None else min(read, deadline_s)
        request.extensions["timeout"] = timeouts
    try:
        response = client.send(request, stream=True)
    except httpx.TimeoutException:
        if clock() >= deadline:
            raise DeadlinePassed(None, 0, deadline_s or 0.0) from None
        raise
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(response.status_code)
            chunks.append(chunk)
            if clock() >= deadline:
                raise DeadlinePassed(response.status_code, size, deadline_s or 0.0)
    except httpx.TimeoutException:
        if clock() >= deadline:
            raise DeadlinePassed(response.status_code, size, deadline_s or 0.0) from None
        raise
    finally:
        response.close()
    return response, b"".join(chunks)
