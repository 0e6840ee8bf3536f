"""The Cloudflare v4 API envelope: bearer auth, `{"success", "errors", "messages", "result"}` -> result or error.

Retries are bounded and safe: a 429 (the request was refused, not run) after its `Retry-After`; a 5xx or
a connection lost mid-request only for idempotent calls, since a repeated D1 `/query` could write twice.
Lists are read to their last page (`page`/`per_page` in, `result_info` out), or not at all."""

from __future__ import annotations

import json as jsonlib
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Self
from urllib.parse import quote

import httpx

from goldgate.bounded_http import (
    NOT_SENT,
    DeadlinePassed,
    ResponseTooLarge,
    bearer_token,
    format_seconds,
    send_bounded,
    tls_context,
)
from goldgate.cloudflare.errors import (
    CloudflareAuthError,
    CloudflareError,
    CloudflareNotFound,
    CloudflareRateLimited,
)
from goldgate.spec import CLOUDFLARE_API

DEFAULT_API_BASE = CLOUDFLARE_API  # one definition, with the rule for goldgate:cloudflareApiBase (goldgate.spec)
# The most of one answer read into memory. D1 builds a /query answer in an isolate of 128 MB, so no real
# answer comes near this. Past it the body is not the API's (a proxy streaming without end) and the call
# fails instead of hanging while memory grows.
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
# The longest one API exchange may take, its answer read to the end. D1 stops a query at 30 s and every
# other v4 call here (a list page, an export or import step, a bookmark) answers at once; 5 minutes leaves
# room for a large /query page over a slow link, and still ends a peer that trickles its answer a byte at a
# time. Long work (an export, an import) is polled in many such calls, each under this bound.
CALL_DEADLINE_S = 300.0
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def path_segment(value: str, what: str) -> str:
    """An id as one URL path segment: '/', '?', '#' and '%' are escaped, and '.' / '..' (which httpx
    would resolve into another path) refused, so a hostile id cannot address another resource."""
    if not isinstance(value, str) or not value or value in (".", ".."):
        raise CloudflareError(f"{str(value)[:80]!r} is not a Cloudflare {what}")
    return quote(value, safe="")


def _retry_after_s(value: str | None) -> float | None:
    """Cloudflare sends Retry-After as whole seconds on a 429."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class CloudflareApi:
    """One httpx.Client speaking the v4 API. `call` returns the envelope's `result`."""

    def __init__(self, api_token: str, base_url: str = DEFAULT_API_BASE, *, timeout_s: float = 60.0,
                 transport: httpx.BaseTransport | None = None, attempts: int = 4, max_retry_after_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, max_response_bytes: int = MAX_RESPONSE_BYTES,
                 deadline_s: float = CALL_DEADLINE_S) -> None:
        token = bearer_token(api_token or "")
        if not api_token or token == "":
            raise CloudflareAuthError("no Cloudflare API token given: pass one with D1 Edit (and R2) permission "
                                      "(CLOUDFLARE_API_TOKEN, as wrangler uses)")
        if token is None:
            raise CloudflareAuthError("the Cloudflare API token holds a character no token has (a space, a line "
                                      "break or a non-ASCII letter inside it): copy it again from the dashboard")
        api_token = token
        self.base_url = base_url.rstrip("/")
        self.attempts = max(1, attempts)
        self.max_retry_after_s = max_retry_after_s
        self.max_response_bytes = max_response_bytes
        self.deadline_s = deadline_s
        self._sleep = sleep
        self._token = api_token
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport, verify=tls_context(),
                                    headers={"Authorization": f"Bearer {api_token}",
                                             "User-Agent": "goldgate-cloudflare/0.1"})

    def __repr__(self) -> str:  # never show the token
        return f"CloudflareApi({self.base_url})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
             idempotent: bool | None = None) -> Any:
        """`idempotent` (default: by method) says whether a 5xx or a lost response may be retried; set it
        for a POST that only reads or polls."""
        return self._call(method, path, json=json, params=params, idempotent=idempotent).get("result")

    def pages(self, path: str, *, params: Mapping[str, Any] | None = None, per_page: int,
              max_pages: int) -> Iterator[list[Any]]:
        """Each page of a v4 list, in order, until `result_info` says it was the last.

        More than `max_pages` pages raises instead of stopping early: a caller that concludes something does
        not exist must have seen the whole list, not its first part."""
        for page in range(1, max_pages + 1):
            where = f"GET {path} (page {page})"
            body = self._call("GET", path, params={**(params or {}), "page": page, "per_page": per_page})
            items = body.get("result")
            if not isinstance(items, list):
                raise CloudflareError(f"{where} answered {type(items).__name__} where a list was expected")
            info = body.get("result_info") if isinstance(body.get("result_info"), dict) else {}
            answered = _count(info.get("page"))
            if answered is not None and answered != page:
                # Asking again would return the same items forever; a partial list would mislead.
                raise CloudflareError(f"{where}: asked for page {page} but was answered page {answered}; the "
                                      "list cannot be read in full")
            yield items
            size = _count(info.get("per_page")) or per_page
            total_pages, total_count = _count(info.get("total_pages")), _count(info.get("total_count"))
            if not items:
                return
            if total_pages is not None:
                if page >= total_pages:
                    return
            elif total_count is not None:
                if page * size >= total_count:
                    return
            elif len(items) < size:
                return
        raise CloudflareError(f"GET {path} has more than {max_pages} pages of {per_page}; refusing to act on part "
                              "of the list: narrow it (a name filter) or raise the bound")

    def _call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
              idempotent: bool | None = None) -> dict[str, Any]:
        method = method.upper()
        where = f"{method} {path}"
        may_repeat = method in _IDEMPOTENT if idempotent is None else idempotent
        attempt = 0
        may_have_run = False  # an earlier attempt reached Cloudflare but its answer was lost or a 5xx
        while True:
            attempt += 1
            last = attempt >= self.attempts
            try:
                response, content = self._send(method, path, json=json, params=params)
            except ResponseTooLarge as exc:
                raise CloudflareError(f"{where} answered {exc.status} with a body of more than "
                                      f"{self.max_response_bytes} bytes; it was not read further: that is no "
                                      f"Cloudflare API answer, check the API base URL ({self.base_url}) and any "
                                      "proxy in between", status=exc.status) from None
            except DeadlinePassed as exc:
                # Not retried: a peer this slow is as slow the next time, and a write may have been applied.
                advice = ("retry later" if may_repeat else
                          "it may have been applied: check its effect before running it again")
                raise CloudflareError(
                    f"{where} did not answer in full within {format_seconds(exc.deadline_s)} ({exc.received} "
                    f"bytes of the answer had come): the Cloudflare API at {self.base_url}, or a proxy in "
                    f"between, is sending it too slowly; {advice}", status=exc.status) from None
            except httpx.DecodingError as exc:
                raise CloudflareError(self._scrub(
                    f"{where} answered with a body that cannot be decoded ({exc}): that is no Cloudflare API "
                    f"answer, check the API base URL ({self.base_url}) and any proxy in between")) from None
            except NOT_SENT as exc:
                # No connection to Cloudflare was made (refused, timed out, none free in the pool, a proxy's
                # CONNECT refused): nothing was sent, so even a POST may be repeated, and if it cannot be, nothing
                # was applied.
                if not last:
                    self._sleep(_backoff_s(attempt))
                    continue
                raise CloudflareError(self._scrub(
                    f"{where}: cannot reach the Cloudflare API at {self.base_url} ({type(exc).__name__}: {exc}) "
                    f"after {attempt} attempts; check the network and retry")) from None
            except httpx.TransportError as exc:
                if may_repeat and not last:
                    may_have_run = True
                    self._sleep(_backoff_s(attempt))
                    continue
                advice = ("retry later" if may_repeat else
                          "it may have been applied: check its effect before running it again")
                raise CloudflareError(self._scrub(
                    f"{where} failed in transit ({type(exc).__name__}: {exc}) after {attempt} "
                    f"attempt{'s' if attempt > 1 else ''}; {advice}")) from None
            status = response.status_code
            if status == 429 and not last:
                wait = _retry_after_s(response.headers.get("Retry-After"))
                wait = _backoff_s(attempt) if wait is None else wait
                if wait <= self.max_retry_after_s:
                    self._sleep(wait)
                    continue
            elif status >= 500 and may_repeat and not last:
                may_have_run = True
                self._sleep(_backoff_s(attempt))
                continue
            if status == 404 and method == "DELETE" and may_have_run:
                # The earlier attempt deleted it (the edge lost or failed the answer): what was asked is done.
                return {"success": True, "errors": [], "messages": [], "result": None}
            return self._envelope(response, content, where, attempt, may_repeat)

    def _send(self, method: str, path: str, *, json: Any, params: Mapping[str, Any] | None
              ) -> tuple[httpx.Response, bytes]:
        """The response and its body, read without caching it on the response: an httpx response refers
        to itself (through its stream), so a cached body, a whole /query page, would outlive the call until
        the cyclic garbage collector ran, and pages of a streamed table would pile up."""
        request = self._client.build_request(method, path, json=json, params=params)
        return send_bounded(self._client, request, self.max_response_bytes, self.deadline_s)

    def _envelope(self, response: httpx.Response, content: bytes, where: str, attempts: int,
                  may_repeat: bool = True) -> dict[str, Any]:
        status = response.status_code
        # A 5xx may come from the edge after the origin did the work: a call that may write (a /query, an
        # import's ingest) must not be run again blindly.
        unsure = "" if may_repeat or status < 500 else (
            "; it may have been applied: check its effect before you retry it")
        try:
            body = jsonlib.loads(content)
        except ValueError:
            body = None
        if status == 429:
            raise self._rate_limited(response, where, attempts, body)
        if 300 <= status < 400:  # the call never reached what it names, whatever the body says
            location = str(response.headers.get("location", ""))[:200]
            raise CloudflareError(f"{where} answered {status}, a redirect to {location or '(nowhere)'}: check the "
                                  f"API base URL ({self.base_url})", status=status)
        if body is None:
            advice = ("Cloudflare's side failed (an error page, not the API's JSON): "
                      + ("retry in a few minutes" if may_repeat else unsure[2:])
                      if status >= 500 else "check the API base URL")
            raise CloudflareError(f"{where} answered {status} with a body that is not JSON: {advice}", status=status)
        if not isinstance(body, dict):
            raise CloudflareError(f"{where} answered with unexpected JSON ({type(body).__name__})", status=status)
        if status >= 400 or body.get("success") is False:
            raise self._error(where, status, body, unsure)
        return body

    def _rate_limited(self, response: httpx.Response, where: str, attempts: int,
                      body: Any) -> CloudflareRateLimited:
        wait = _retry_after_s(response.headers.get("Retry-After"))
        errors = body.get("errors") if isinstance(body, dict) and isinstance(body.get("errors"), list) else []
        codes = tuple(int(e["code"]) for e in errors if isinstance(e, dict) and isinstance(e.get("code"), int))
        return CloudflareRateLimited(
            f"{where} -> 429 after {attempts} attempt{'s' if attempts > 1 else ''}: the Cloudflare API rate limit "
            # Cloudflare's "Rate limits" page: 1,200 per five minutes per user, the dashboard's, API keys' and every
            # user token's calls counted together (an account-owned token has its own); past it, every call is
            # refused for five minutes. Another user token does not help.
            "(1,200 requests per 5 minutes per user: the dashboard and all of the user's API tokens count together) "
            "is exhausted, and Cloudflare refuses every call for five minutes; "
            + (f"retry in {wait:.0f} s" if wait is not None else "wait five minutes and retry"),
            retry_after_s=wait, status=429, codes=codes)

    def _error(self, where: str, status: int, body: dict[str, Any], unsure: str = "") -> CloudflareError:
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        codes = tuple(int(e["code"]) for e in errors if isinstance(e, dict) and isinstance(e.get("code"), int))
        said = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:5])
        said = self._scrub(said or f"HTTP {status}")
        permission, names = _what_the_path_needs(where.partition(" ")[2])
        if status in (401, 403):
            return CloudflareAuthError(f"{where} -> {status} ({said}): the API token is wrong or lacks the "
                                       f"{permission} permission on this account", status=status, codes=codes)
        if status == 404:
            return CloudflareNotFound(f"{where} -> 404 ({said}): check the {names}", status=status, codes=codes)
        return CloudflareError(f"{where} -> {status} ({said}){unsure}", status=status, codes=codes)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***")


# The token permission each API area needs (Cloudflare's names, as the dashboard lists them) and the
# identifiers a 404 there is most likely about; the first prefix that matches the path after /accounts/<id>.
_AREAS = (("/d1/", "D1 Edit", "account id and database id"),
          ("/r2/", "Workers R2 Storage Edit", "account id and bucket name"),
          ("/workers/", "Workers Scripts Edit", "account id and Worker name"))


def _what_the_path_needs(path: str) -> tuple[str, str]:
    """(the permission, the identifiers to check) for a call to `path`."""
    rest = path.partition("?")[0]
    if rest.startswith("/accounts/"):
        rest = "/" + rest[len("/accounts/"):].partition("/")[2]
    for prefix, permission, names in _AREAS:
        if rest.startswith(prefix):
            return permission, names
    return "needed", "account id and the path"


def _count(value: Any) -> int | None:
    """A non-negative whole number from `result_info`, or None when absent or malformed."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _backoff_s(attempt: int) -> float:
    # Full jitter keeps several operators' scripts from retrying in lockstep after a shared outage.
    ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
