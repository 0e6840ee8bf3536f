"""Per-client rate limits on the two routes that cost money or storage: POST /api/queue/create (a RunPod job) and
POST /api/inputs (an image kept in R2 for storage.result_ttl_days). A client stuck in a retry loop is answered 429
`rate_limited` instead of filling the queue or the bucket as fast as the Worker takes requests.

A limit counts per API token used, the current one or the previous one while it is rotated (never the token's value),
and per named client (service/clients.py): each client's token is its own budget, so one client's retry loop never
gets another's requests refused; a client's address would give a retry loop on many machines (or
behind a NAT, many clients one budget) the wrong count. The Worker counts with Cloudflare's Workers Rate Limiting
binding (service/cloudflare_entry.py), per Cloudflare location and eventually consistent: a soft limit. Locally,
`WindowRateLimit` counts the same way in process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.http import ApiError
from service.ports import RateLimit
from service.signing import SignedWith

CREATE = "create"
INPUTS = "inputs"
# The binding's period: Cloudflare takes 10 or 60 seconds; the stack's limits are a number a minute.
PERIOD_S = 60
ROUTES = {CREATE: "POST /api/queue/create", INPUTS: "POST /api/inputs"}
# Each route's ServiceConfig key, and the StackSpec field it comes from.
CONFIG_KEYS = {CREATE: "create_rate_limit_per_minute", INPUTS: "inputs_rate_limit_per_minute"}
SPEC_FIELDS = {CREATE: "api.rate_limits.create_per_minute", INPUTS: "api.rate_limits.inputs_per_minute"}
# How long a request waits for its count. Cloudflare's binding answers from a counter cached on the machine the Worker
# runs on, far within this; one that has not answered by then has failed (the request goes through, its line says
# so), rather than holding every create and upload until the runtime gives up on it.
COUNT_TIMEOUT_S = 1.0


class CounterFailed(Exception):
    """The counter of a route's limit did not answer true or false in time: the request is let through."""


def rate_key(route: str, token: SignedWith | str) -> str:
    """What a request is counted under: its route and which API token it carried ("current" or "previous"), or the
    named client that sent it ("client:<name>", service/clients.py): each client its own budget."""
    return f"{route}:{token}"


@dataclass(frozen=True)
class RouteLimit:
    """A route's limit: `per_minute` requests a token may make in PERIOD_S, counted by `counter`."""

    route: str
    per_minute: int
    counter: RateLimit


async def counted(limit: RouteLimit, token: SignedWith | str) -> bool:
    """Count one request to `limit`'s route made with `token`: True while within the limit, False over it. Raises
    (CounterFailed, or what the counter raised) when the counter gives no answer within COUNT_TIMEOUT_S, or another
    answer than true or false: a binding answering `success: null` must not refuse every request as over its
    limit, nor a string "false" let them all through as within it."""
    try:
        async with asyncio.timeout(COUNT_TIMEOUT_S):
            within = await limit.counter.limit(rate_key(limit.route, token))
    except TimeoutError:
        raise CounterFailed(f"the {ROUTES[limit.route]} rate limit did not answer within {COUNT_TIMEOUT_S:g} s") \
            from None
    if within is True or within is False:
        return within
    raise CounterFailed(f"the {ROUTES[limit.route]} rate limit answered {within!r:.100}, not true or false")


class WindowRateLimit:
    """The RateLimit port in process: a fixed window of PERIOD_S per key, aligned to the clock's epoch, as
    Cloudflare's binding counts (and miniflare's stand-in of it). Safe across threads and tasks; its keys are the
    routes times the two tokens and the named clients (at most 100), so it never grows past that. A clock set back
    never starts a new budget: a step back into the window before keeps counting in the current one, and a longer
    one (a clock fixed after running ahead) is followed with the counts kept, which start again at its next window."""

    def __init__(self, per_minute: int, clock: Callable[[], float], period_s: int = PERIOD_S) -> None:
        self.per_minute, self.clock, self.period_s = per_minute, clock, period_s
        self._window: int | None = None
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    async def limit(self, key: str) -> bool:
        window = int(self.clock() // self.period_s)
        with self._lock:
            if self._window is None or window > self._window:
                self._window, self._counts = window, {}
            elif window < self._window - 1:
                self._window = window
            taken = self._counts.get(key, 0)
            if taken >= self.per_minute:
                return False
            self._counts[key] = taken + 1
            return True


def limits_in_process(per_minute: Mapping[str, int | None], clock: Callable[[], float]) -> dict[str, RouteLimit]:
    """A WindowRateLimit for each route given a limit (None: that route has none)."""
    return {route: RouteLimit(route, limit, WindowRateLimit(limit, clock))
            for route, limit in per_minute.items() if limit is not None}


def refusal(limit: RouteLimit) -> ApiError:
    """The 429 of a request over its route's limit: the route, the limit and the period, and what to do."""
    return ApiError(429, "rate_limited", f"{ROUTES[limit.route]} is limited to {limit.per_minute} requests a minute "
                                         f"per token, the API token's and each named client's apart (the stack's "
                                         f"{SPEC_FIELDS[limit.route]}), and this token "
                                         f"has made them: nothing was done; retry after Retry-After ({PERIOD_S} s) "
                                         "and send fewer requests",
                    retry_after=str(PERIOD_S))
