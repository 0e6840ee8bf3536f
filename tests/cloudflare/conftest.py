"""Loopback stand-ins for Cloudflare: the D1 REST API (goldgate.cloudflare.d1_standin) and R2 (moto's S3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from r2_server import r2_admin

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn

D1_TOKEN = "cf-test-token-0123456789"


@pytest.fixture
def r2():
    with r2_admin("goldgate-test") as admin:
        yield admin


@pytest.fixture
def standin() -> Iterator[D1StandIn]:
    """The D1 REST API's stand-in, taking `D1_TOKEN`. A test module with its own `standin` (other polls, another
    token) uses that instead."""
    with D1StandIn(D1_TOKEN) as s:
        yield s


@pytest.fixture
def d1(standin: D1StandIn) -> Iterator[D1Client]:
    """A D1 client of the stand-in's account that never pauses between polls."""
    api = CloudflareApi(D1_TOKEN, standin.api_base)
    yield D1Client(api, standin.account_id, poll_interval_s=0.0)
    api.close()
