"""A call that found no free connection in the client's pool in time (httpx's PoolTimeout) sent nothing to
Cloudflare, as a refused connection sends nothing: even a write is tried again, and when it never gets a
connection the error says it was not sent, not that it may have been applied. The D1 stand-in serves the API
over real HTTP; the pool has room for one connection, held by a streamed answer not yet read."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.errors import CloudflareError

TOKEN = "cf-review13-x3-token-0123456789"


@pytest.fixture
def standin() -> Iterator[D1StandIn]:
    with D1StandIn(TOKEN) as s:
        yield s


def _one_connection(standin: D1StandIn, sleep) -> D1Client:
    api = CloudflareApi(TOKEN, standin.api_base, timeout_s=0.3, sleep=sleep,
                        transport=httpx.HTTPTransport(limits=httpx.Limits(max_connections=1)))
    return D1Client(api, standin.account_id, poll_interval_s=0.0)


def _hold_the_connection(d1: D1Client) -> httpx.Response:
    """A streamed answer left unread keeps the pool's one connection taken until it is closed."""
    client = d1.api._client
    return client.send(client.build_request("GET", f"/accounts/{d1.account_id}/d1/database"), stream=True)


def _database(standin: D1StandIn) -> tuple[D1Client, str]:
    setup = D1Client(CloudflareApi(TOKEN, standin.api_base), standin.account_id, poll_interval_s=0.0)
    database = setup.create_database("goldgate-pool").uuid
    setup.query(database, "CREATE TABLE jobs (id TEXT PRIMARY KEY, n INTEGER)")
    return setup, database


def test_a_write_that_found_no_free_connection_is_sent_again_and_applied_once(standin) -> None:
    setup, database = _database(standin)
    held: list[httpx.Response] = []
    slept: list[float] = []

    def back_off(seconds: float) -> None:
        slept.append(seconds)
        held.pop().close()  # the connection goes back to the pool

    d1 = _one_connection(standin, back_off)
    held.append(_hold_the_connection(d1))
    assert d1.query(database, "INSERT INTO jobs VALUES ('a', 1) RETURNING id") == [{"id": "a"}]
    assert len(slept) == 1
    assert setup.query(database, "SELECT id, n FROM jobs") == [{"id": "a", "n": 1}]
    d1.api.close()
    setup.api.close()


def test_a_write_that_never_got_a_connection_says_it_was_not_sent(standin) -> None:
    setup, database = _database(standin)
    d1 = _one_connection(standin, lambda _seconds: None)
    held = _hold_the_connection(d1)
    with pytest.raises(CloudflareError) as failed:
        d1.query(database, "INSERT INTO jobs VALUES ('a', 1)")
    message = str(failed.value)
    assert "cannot reach the Cloudflare API" in message and "PoolTimeout" in message
    assert "after 4 attempts" in message
    assert "may have been applied" not in message and TOKEN not in message
    held.close()
    assert setup.query(database, "SELECT id FROM jobs") == []
    d1.api.close()
    setup.api.close()
