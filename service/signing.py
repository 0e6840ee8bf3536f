"""Signatures: the per-job webhook URL and the expiring result URLs that status hands out.

Webhook: `sig = hex HMAC-SHA256(webhook_secret, job_id)`; it is fixed for the job's life because
RunPod keeps the URL for its retries.

Result URLs: `/api/result/<key>?exp=<unix seconds>&sig=<hex>` with
`sig = hex HMAC-SHA256(K, "<key>\\n<exp>")` and `K = HMAC-SHA256(webhook_secret,
"goldgate.result-url.v1")`. Deriving K with a fixed label (domain separation) means no result URL
signature can ever be replayed as a webhook signature or the other way round, and only one secret
has to be provisioned. The URL stops working after `exp`, and is refused while `exp` lies further ahead than any
URL is handed out for (`max_ttl_s`, 7 days at most, plus a minute): one handed out while the service's clock ran
ahead (a VM's wrong date, a clock set years ahead, then put right) would otherwise stay valid for the whole of the
excursion, years, wherever it was passed on; refused, its holder asks /api/status for a fresh one.

Rotation: new URLs are always signed with the current secret; while the config also holds the previous
one (`webhook_secret_previous`), a signature by either is accepted, so the webhooks of jobs in flight and
the result URLs already handed out keep working. `signed_with` says which one signed, so the operator can
see when the previous secret stops being used and drop it (docs/RUNBOOK.md). Every check compares in
constant time, against both secrets whenever a previous one is set.

The API token rotates the same way: while the config holds the previous token (`api_token_previous`), a bearer
token equal to either is accepted, both compared every time, and `bearer_caller` says which one it was. The
API token signs nothing: the result URLs handed out are the webhook secret's, and outlive a token rotation.
A bearer that is neither is looked for among the named clients' tokens (service/clients.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Literal

from service.clients import client_token_used
from service.config import MAX_SIGNED_URL_TTL_S

SignedWith = Literal["current", "previous"]
# A caller served on a named client's token is "client:<name>": its rate limits' key, never an API token's.
CLIENT_PREFIX = "client:"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DIGITS = re.compile(r"[0-9]{1,12}")  # not str.isdigit(): that takes '²', which int() refuses
_RESULT_URL_LABEL = b"goldgate.result-url.v1"
MAX_URL_TTL_S = MAX_SIGNED_URL_TTL_S  # the longest a result URL is handed out for
_URL_CLOCK_SLACK_S = 60  # the status read and the GET may run on two machines, their clocks a little apart


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    """HMAC-SHA256 keyed with `secret`, never updated: each signature copies it. Keying it (hashing the
    padded key, OpenSSL looking the digest up by name) cost more than signing a job id, on every webhook."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def webhook_signature(secret: str, job_id: str) -> str:
    mac = _keyed(secret).copy()
    mac.update(job_id.encode())
    return mac.hexdigest()


def _signed_with(current: str, previous: str | None, sign: Callable[[str], str], sig: str) -> SignedWith | None:
    # Both comparisons run whichever matches: the answer's timing says nothing about which secret signed.
    by_current = hmac.compare_digest(sign(current), sig)
    by_previous = previous is not None and hmac.compare_digest(sign(previous), sig)
    if by_current:
        return "current"
    return "previous" if by_previous else None


def webhook_signed_with(current: str, previous: str | None, job_id: str, sig: str | None) -> SignedWith | None:
    """Which secret signed `job_id`'s webhook signature `sig`: "current", "previous", or None (neither)."""
    sig = sig.lower() if sig else ""
    if not _HEX64.match(sig):
        return None
    return _signed_with(current, previous, lambda secret: webhook_signature(secret, job_id), sig)


def verify_webhook_signature(secret: str, job_id: str, sig: str | None) -> bool:
    return webhook_signed_with(secret, None, job_id, sig) is not None


def _result_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _RESULT_URL_LABEL, hashlib.sha256).digest()


def result_signature(secret: str, key: str, expires_at: int) -> str:
    return hmac.new(_result_key(secret), f"{key}\n{expires_at}".encode(), hashlib.sha256).hexdigest()


def result_signed_with(current: str, previous: str | None, key: str, exp: str | None, sig: str | None,
                       now: float, max_ttl_s: float = MAX_URL_TTL_S) -> SignedWith | None:
    """Which secret signed (key, exp) as `sig`, if exp is still in the future and no further ahead than a URL is
    handed out for (`max_ttl_s`: by default the longest any stack hands one out for, so lowering a stack's
    signed_url_ttl_s revokes no URL already handed out): "current", "previous", or None."""
    if not exp or not sig or not _DIGITS.fullmatch(exp) or not _HEX64.match(sig.lower()):
        return None
    if int(exp) < now or int(exp) > now + min(max_ttl_s, MAX_URL_TTL_S) + _URL_CLOCK_SLACK_S:
        return None
    expires = int(exp)
    return _signed_with(current, previous, lambda secret: result_signature(secret, key, expires), sig.lower())


def verify_result_signature(secret: str, key: str, exp: str | None, sig: str | None, now: float,
                            max_ttl_s: float = MAX_URL_TTL_S) -> bool:
    """True if `sig` signs (key, exp) and exp is still in the future, no further than `max_ttl_s` ahead."""
    return result_signed_with(secret, None, key, exp, sig, now, max_ttl_s) is not None


def _bearer(authorization: str | None) -> bytes | None:
    """The token of a bearer Authorization field, as bytes; None for another scheme or none."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":  # the scheme is case-insensitive (RFC 9110 section 11.1)
        return None
    # surrogatepass: a lone surrogate (no runtime hands one over, but the core is not to crash on it) is no token
    return token.strip().encode("utf-8", "surrogatepass")


def bearer_caller(current: str, previous: str | None, clients: Mapping[str, str] | None,
                  authorization: str | None) -> str | None:
    """Who `authorization` (an Authorization header) authenticates: "current" or "previous" (the API token; the
    previous one only while one is set), "client:<name>" (a named client's token, by its sha256 in `clients`, service/clients.py),
    or None. A client's hashes are compared only for a bearer that is not the API token."""
    given = _bearer(authorization)
    if given is None:
        return None
    used = _api_token_used(current, previous, given)
    if used is not None:
        return used
    name = client_token_used(clients or {}, given)
    return None if name is None else CLIENT_PREFIX + name


def _api_token_used(current: str, previous: str | None, given: bytes) -> SignedWith | None:
    # Both comparisons run whichever matches: the answer's timing says nothing about which token was sent.
    by_current = hmac.compare_digest(current.encode(), given)
    by_previous = previous is not None and hmac.compare_digest(previous.encode(), given)
    if by_current:
        return "current"
    return "previous" if by_previous else None
