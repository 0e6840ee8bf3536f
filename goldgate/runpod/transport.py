"""The HTTP layer under both RunPod clients: bearer auth, bounded retries with backoff, problem JSON -> errors."""

from __future__ import annotations

import email.utils
import json as jsonlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeVar

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
from goldgate.runpod.errors import (
    RunPodAuthError,
    RunPodError,
    RunPodNotFound,
    RunPodProtocolError,
    RunPodRateLimited,
    RunPodRejected,
    RunPodUnavailable,
)

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The most of one answer read into memory: a /runsync or /status output is at most 20 MB, control-plane
# answers are small. Past it the body is not RunPod's (a proxy streaming without end) and the call fails
# instead of hanging while memory grows.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# The longest one call may take, its answer read to the end (a call that waits server-side, /runsync, adds its
# wait). Every REST v2 and data-plane answer is immediate; 2 minutes carries the largest (a 20 MB job output)
# over a slow link, and still ends a peer that trickles its answer a byte at a time.
CALL_DEADLINE_S = 120.0
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. `attempts` counts the first try. 429 is always retried (the request was not
    processed), and so is a connection that never opened (refused, timed out, a proxy refused it: nothing was
    sent); 5xx and failures in transit only for idempotent requests, because a retried POST /run or POST
    /v2/serverless after a 5xx may create a second job or endpoint (set `retry_unsafe` to allow it)."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 60.0
    retry_unsafe: bool = False

    def delay(self, attempt: int) -> float:
        # Full jitter keeps many clients from retrying in lockstep after a shared outage.
        ceiling = min(self.max_backoff_s, self.backoff_s * (2 ** attempt))
        return random.uniform(ceiling / 2, ceiling)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class _Call:
    """One request as `Transport.request` tries and retries it."""

    method: str
    path: str
    where: str  # "METHOD url", as error messages name the call
    kwargs: dict[str, Any]
    deadline_s: float
    redact: tuple[str, ...]
    may_retry_failure: bool  # a 5xx or a failure in transit may be retried: the request is idempotent


class Transport:
    """One httpx.Client with RunPod auth. `request` returns parsed JSON (or None for an empty body)."""

    def __init__(self, base_url: str, api_key: str, *, what: str, retry: RetryPolicy | None = None,
                 timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None,
                 event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 max_response_bytes: int = MAX_RESPONSE_BYTES, deadline_s: float = CALL_DEADLINE_S) -> None:
        key = bearer_token(api_key or "")
        if not api_key or key == "":
            raise RunPodAuthError(f"no RunPod API key given for the {what}: set the stack's RunPod API key "
                                  "(runpod_api_key_file for local stacks, the Pulumi secret in the cloud)")
        if key is None:
            raise RunPodAuthError(f"the RunPod API key for the {what} holds a character no key has (a space, a "
                                  "line break or a non-ASCII letter inside it): copy it again from the RunPod "
                                  "console")
        api_key = key
        self.base_url = base_url.rstrip("/")
        self.what = what
        self.retry = retry or RetryPolicy()
        self._api_key = api_key
        self._sleep = sleep
        self.max_response_bytes = max_response_bytes
        self.deadline_s = deadline_s
        self._client = httpx.Client(
            base_url=self.base_url, timeout=timeout_s, transport=transport, verify=tls_context(),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json",
                     "User-Agent": "goldgate-runpod/0.1"},
            event_hooks=dict(event_hooks or {}))

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:  # never show the key
        return f"Transport({self.what} at {self.base_url})"

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                timeout_s: float | None = None, redact: tuple[str, ...] = (), wait_s: float = 0.0) -> Any:
        """`redact`: values from the request body (a registry password) that no error message may show,
        even when the server echoes them back in a validation error. `wait_s`: how long the server may hold
        the call on purpose (/runsync), added to the call's deadline."""
        method = method.upper()
        kwargs: dict[str, Any] = {"json": json, "params": params}
        if timeout_s is not None:
            kwargs["timeout"] = timeout_s
        call = _Call(method, path, f"{method} {self.base_url}{path}", kwargs, self.deadline_s + wait_s,
                     redact, method in _IDEMPOTENT or self.retry.retry_unsafe)
        attempt = 0
        while True:
            attempt += 1
            answer = self._attempt(call, attempt)
            if answer is None:  # nothing came back, and another try may get through
                self._sleep(self.retry.delay(attempt - 1))
                continue
            response, content = answer
            wait = self._retry_wait(call, response, attempt)
            if wait is not None:
                self._sleep(wait)
                continue
            if not 200 <= response.status_code < 300:
                raise self._error(response, content, call.where, attempt, call.redact)
            return self._parse(response, content, call.where)

    def _attempt(self, call: _Call, attempt: int) -> tuple[httpx.Response, bytes] | None:
        """One try: the answer and its body, None when it failed in a way worth another try, or the error."""
        last = attempt >= self.retry.attempts
        where, redact = call.where, call.redact
        try:
            return self._send(call.method, call.path, call.kwargs, call.deadline_s)
        except DeadlinePassed as exc:
            # Not retried: a peer this slow is as slow the next time, and a POST may have been applied.
            raise RunPodUnavailable(self._scrub(redact,
                f"{where} did not answer in full within {format_seconds(exc.deadline_s)} ({exc.received} "
                f"bytes of the answer had come): the {self.what}, or a proxy in between, is sending it too "
                "slowly; the request may or may not have been applied: read the resource before retrying"),
                status=exc.status) from None
        except ResponseTooLarge as exc:
            raise RunPodProtocolError(self._scrub(redact,
                f"{where} answered {exc.status} with a body of more than {self.max_response_bytes} bytes; it "
                "was not read further: that is no RunPod answer, check the base URL and any proxy in "
                "between"), status=exc.status) from None
        except httpx.DecodingError as exc:
            raise RunPodProtocolError(self._scrub(redact,
                f"{where} answered with a body that cannot be decoded ({exc}): that is no RunPod answer, "
                "check the base URL and any proxy in between")) from None
        except NOT_SENT as exc:
            # No connection was opened (refused, no answer to it in time, none free in the pool, a proxy's
            # CONNECT refused), so nothing was sent: even a POST is safe to retry.
            if last:
                raise RunPodUnavailable(self._scrub(redact,
                    f"cannot connect to the {self.what} at {self.base_url} ({type(exc).__name__}: {exc}) "
                    f"after {attempt} attempts: check the base URL, any proxy in between and that the "
                    "service (or local emulator) is running"))
            return None
        except httpx.TransportError as exc:
            if last or not call.may_retry_failure:
                raise RunPodUnavailable(self._scrub(redact,
                    f"{where} failed in transit ({type(exc).__name__}: {exc}) after {attempt} attempt(s); "
                    "the request may or may not have been applied: read the resource before retrying"))
            return None

    def _retry_wait(self, call: _Call, response: httpx.Response, attempt: int) -> float | None:
        """How long to wait before trying again after this answer, or None to take it as it is."""
        last = attempt >= self.retry.attempts
        status = response.status_code
        if status == 429 and not last:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is None:
                wait = self.retry.delay(attempt - 1)
            if wait <= self.retry.max_retry_after_s:
                return wait
        elif status >= 500 and call.may_retry_failure and not last:
            return self.retry.delay(attempt - 1)
        return None

    def _send(self, method: str, path: str, kwargs: dict[str, Any], deadline_s: float
              ) -> tuple[httpx.Response, bytes]:
        """The response and its body, read no further than `max_response_bytes` nor past `deadline_s`."""
        return send_bounded(self._client, self._client.build_request(method, path, **kwargs),
                            self.max_response_bytes, deadline_s)

    def _parse(self, response: httpx.Response, content: bytes, where: str) -> Any:
        if response.status_code == 204 or not content:
            return None
        try:
            return jsonlib.loads(content)
        except ValueError:
            raise RunPodProtocolError(
                f"{where} answered {response.status_code} with a body that is not JSON "
                f"(content-type {response.headers.get('content-type')!r}): check the base URL points at "
                "RunPod's API and not at a proxy or web page", status=response.status_code) from None

    def _error(self, response: httpx.Response, content: bytes, where: str, attempts: int,
               redact: tuple[str, ...] = ()) -> RunPodError:
        status = response.status_code
        title, detail = _problem(response, content, lambda text: self._scrub(redact, text))
        said = f"{title}: {detail}" if detail else title
        kw = {"status": status, "title": title, "detail": detail}
        if status < 400:
            # httpx does not follow redirects: a 3xx means the base URL points somewhere RunPod moved away
            # from (http:// instead of https://, an old host), and nothing was done.
            location = self._scrub(redact, response.headers.get("Location") or "nowhere")
            return RunPodProtocolError(
                f"{where} -> {status}: redirected to {location}; nothing was done: set the base URL to where "
                "RunPod's API really is", **kw)
        if status in (401, 403):
            return RunPodAuthError(
                f"{where} -> {status} ({said}): the RunPod API key is missing, wrong or lacks access; "
                "check the stack's key and its permissions in the RunPod console", **kw)
        if status == 404:
            return RunPodNotFound(
                f"{where} -> 404 ({said}): it does not exist (deleted, wrong id, or a job past its ttl)", **kw)
        if status == 429:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            return RunPodRateLimited(
                f"{where} -> 429 ({said}) after {attempts} attempt(s): slow down"
                + (f" and retry in {retry_after:.0f}s" if retry_after is not None else ""),
                retry_after_s=retry_after, **kw)
        if status >= 500:
            return RunPodUnavailable(
                f"{where} -> {status} ({said}) after {attempts} attempt(s): RunPod is failing; retry later "
                "and check its status page (for a POST, read the resource first: it may have been applied)",
                **kw)
        return RunPodRejected(f"{where} -> {status} ({said}): RunPod refused the request as sent; fix it "
                              "(see the detail) rather than retrying", **kw)

    def _scrub(self, redact: tuple[str, ...], text: str) -> str:
        for secret in (self._api_key, *redact):
            if secret:
                text = text.replace(secret, "***")
        return text


def _problem(response: httpx.Response, content: bytes,
             scrub: Callable[[str], str]) -> tuple[str, str | None]:
    """(title, detail) from RFC 9457 problem JSON, the data plane's {"error": ...}, or plain text.

    `scrub` runs before the cut: a secret straddling the cut would otherwise leave its head behind."""
    reason = response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = jsonlib.loads(content)
    except ValueError:
        text = scrub(content.decode(response.encoding or "utf-8", errors="replace").strip())
        return reason, (text[:300] or None)
    if isinstance(body, dict):
        title = body.get("title") or reason
        detail = body.get("detail") or body.get("error") or body.get("message")
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            detail = f"{detail or ''} ({'; '.join(str(e) for e in errors[:5])})".strip()
        return scrub(str(title))[:200], (scrub(str(detail))[:500] if detail else None)
    return reason, scrub(str(body))[:300]


class ClientBase:
    """What every RunPod client shares: its transport's base URL, close, and use as a context manager."""

    _http: Transport

    def _read(self, method: str, path: str, parse: Callable[[Any], T], *, redact: tuple[str, ...] = (),
              **kw: Any) -> T:
        """Request, then `parse` the JSON answer: a 2xx body this client cannot read is a RunPodProtocolError
        naming the request, never a bare TypeError from deep inside a value's `from_wire`."""
        body = self._http.request(method, path, redact=redact, **kw)
        where = f"{method} {self.base_url}{path}"
        try:
            return parse(body)
        except RunPodProtocolError as exc:
            raise RunPodProtocolError(self._http._scrub(redact, f"{where}: {exc}")) from None
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise RunPodProtocolError(self._http._scrub(redact,
                f"{where} answered JSON this client cannot read ({type(exc).__name__}: {exc}): the API changed "
                "or the base URL is wrong")) from None

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
