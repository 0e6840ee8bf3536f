"""What a Cloudflare API 429 tells the operator. Cloudflare's "Rate limits" page: 1,200 requests per five minutes
per user, counted together whatever makes them (the dashboard, an API key, any of the user's API tokens), and once
over, every call is refused for five minutes. The error said "1200 requests per 5 minutes per token" and, without a
Retry-After, "wait a few minutes": an operator would reach for a second token (which shares the limit) or retry
after two minutes (still blocked)."""

from __future__ import annotations

import json

import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.errors import CloudflareRateLimited

D1_TOKEN = "cf-test-token-0123456789"  # what tests/cloudflare/conftest.py's `standin` takes
RATE_LIMITED = json.dumps({"success": False, "errors": [
    {"code": 971, "message": "Please wait and consider throttling your request speed"}],
    "messages": [], "result": None}).encode()


def test_a_429_without_retry_after_names_the_per_user_limit_and_its_five_minute_block(standin):
    for _ in range(4):  # every attempt the client makes
        standin.fail_with(429, RATE_LIMITED, {"Content-Type": "application/json"})
    api = CloudflareApi(D1_TOKEN, standin.api_base, sleep=lambda _s: None)
    with pytest.raises(CloudflareRateLimited) as raised:
        D1Client(api, standin.account_id).list_databases()
    api.close()
    message = str(raised.value)
    assert "per token" not in message, message
    assert "per user" in message and "dashboard" in message, message
    assert "wait five minutes and retry" in message, message
    assert raised.value.codes == (971,) and raised.value.retry_after_s is None


def test_a_429_with_a_long_retry_after_is_raised_at_once_with_cloudflares_wait(standin):
    standin.rate_limit(300)  # past the client's 60 s: not slept through
    api = CloudflareApi(D1_TOKEN, standin.api_base, sleep=lambda _s: pytest.fail("slept through a 300 s block"))
    with pytest.raises(CloudflareRateLimited) as raised:
        D1Client(api, standin.account_id).list_databases()
    api.close()
    message = str(raised.value)
    assert "retry in 300 s" in message and "per user" in message, message
    assert raised.value.retry_after_s == 300
