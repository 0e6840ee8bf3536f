"""The Cloudflare API client when no connection to Cloudflare could be made: nothing was sent, so even a write
is tried again, and when it never gets through the error says so, not that it may have been applied."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.errors import CloudflareError

TOKEN = "cf-review13-token-0123456789"


class FailsToConnect(httpx.BaseTransport):
    """The first `times` requests fail as httpx fails one whose connection never came up (the TCP or TLS
    handshake timed out, or a proxy refused the tunnel); the rest go to the real server."""

    def __init__(self, error: type[httpx.TransportError], times: int) -> None:
        self.error, self.times = error, times
        self.failed: list[str] = []
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if len(self.failed) < self.times:
            self.failed.append(f"{request.method} {request.url.path}")
            raise self.error("connection not established", request=request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def standin() -> Iterator[D1StandIn]:
    with D1StandIn(TOKEN) as s:
        yield s


def _client(standin: D1StandIn, transport: httpx.BaseTransport) -> D1Client:
    api = CloudflareApi(TOKEN, standin.api_base, transport=transport, sleep=lambda _s: None)
    return D1Client(api, standin.account_id, poll_interval_s=0.0)


@pytest.mark.parametrize("error", [httpx.ConnectTimeout, httpx.ProxyError])
def test_a_write_whose_connection_never_came_up_is_sent_again_and_applied_once(standin, error):
    setup = _client(standin, httpx.HTTPTransport())
    database = setup.create_database("goldgate-connect").uuid
    setup.query(database, "CREATE TABLE jobs (id TEXT PRIMARY KEY, n INTEGER)")
    transport = FailsToConnect(error, times=2)
    d1 = _client(standin, transport)
    assert d1.query(database, "INSERT INTO jobs VALUES ('a', 1) RETURNING id") == [{"id": "a"}]
    assert len(transport.failed) == 2
    assert setup.query(database, "SELECT id, n FROM jobs") == [{"id": "a", "n": 1}]
    d1.api.close()
    setup.api.close()


def test_a_write_that_never_got_a_connection_says_it_was_not_sent_not_that_it_may_have_applied(standin):
    transport = FailsToConnect(httpx.ConnectTimeout, times=99)
    d1 = _client(standin, transport)
    with pytest.raises(CloudflareError) as failed:
        d1.query("some-database", "INSERT INTO jobs VALUES ('a', 1)")
    message = str(failed.value)
    assert len(transport.failed) == 4  # the client's every attempt
    assert "cannot reach the Cloudflare API" in message and "after 4 attempts" in message
    assert "may have been applied" not in message and TOKEN not in message
    d1.api.close()
