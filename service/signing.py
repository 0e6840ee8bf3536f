"""Signatures: the per-job webhook URL and the expiring result URLs that status hands out.

Webhook: `sig = hex HMAC-SHA256(webhook_secret, job_id)`; it is fixed for the job's life because
RunPod keeps the URL for its retries.

Result URLs: `/api/result/<key>?exp=<unix seconds>&sig=<hex>` with
`sig = hex HMAC-SHA256(K, "<key>\\n<exp>")` and `K = HMAC-SHA256(webhook_secret,
"goldgate.result-url.v1")`. Deriving K with a fixed label (domain separation) means no result URL
signature can ever be replayed as a webhook signature or the other way round, and only one secret
has to be provisioned. The URL stops working after `exp`; changing the webhook secret revokes
every outstanding URL (and every in-flight webhook URL, so rotate between jobs).
Both checks compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DIGITS = re.compile(r"[0-9]{1,12}")  # not str.isdigit(): that takes '²', which int() refuses
_RESULT_URL_LABEL = b"goldgate.result-url.v1"


def webhook_signature(secret: str, job_id: str) -> str:
    return hmac.digest(secret.encode(), job_id.encode(), "sha256").hex()


def verify_webhook_signature(secret: str, job_id: str, sig: str | None) -> bool:
    if not sig or not _HEX64.match(sig.lower()):
        return False
    return hmac.compare_digest(webhook_signature(secret, job_id), sig.lower())


def _result_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _RESULT_URL_LABEL, hashlib.sha256).digest()


def result_signature(secret: str, key: str, expires_at: int) -> str:
    return hmac.new(_result_key(secret), f"{key}\n{expires_at}".encode(), hashlib.sha256).hexdigest()


def verify_result_signature(secret: str, key: str, exp: str | None, sig: str | None, now: float) -> bool:
    """True if `sig` signs (key, exp) and exp is still in the future."""
    if not exp or not sig or not _DIGITS.fullmatch(exp) or not _HEX64.match(sig.lower()):
        return False
    if int(exp) < now:
        return False
    return hmac.compare_digest(result_signature(secret, key, int(exp)), sig.lower())


def bearer_matches(expected_token: str, authorization: str | None) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":  # the scheme is case-insensitive (RFC 9110 section 11.1)
        return False
    return hmac.compare_digest(expected_token.encode(), token.strip().encode())
