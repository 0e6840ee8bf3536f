"""What the Cloudflare clients raise: one type per failure an operator acts on differently."""

from __future__ import annotations

from goldgate.errors import GoldgateError


class CloudflareError(GoldgateError):
    """A Cloudflare API call failed; the message names the call and what to do."""

    def __init__(self, message: str, *, status: int | None = None, codes: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes


class CloudflareAuthError(CloudflareError):
    """The API token is missing, wrong, or lacks the D1/R2 permission the call needs."""


class CloudflareRateLimited(CloudflareError):
    """429 after every allowed retry, or a wait longer than the client will sleep. `retry_after_s` is
    Cloudflare's advice (its API blocks a token for up to five minutes past the limit), when it gave one."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, status: int | None = None,
                 codes: tuple[int, ...] = ()) -> None:
        super().__init__(message, status=status, codes=codes)
        self.retry_after_s = retry_after_s


class CloudflareNotFound(CloudflareError):
    """The account, database or object does not exist."""


class D1OperationFailed(CloudflareError):
    """A D1 export, import or time-travel restore reported an error or did not finish in time."""


class R2Error(GoldgateError):
    """An R2 (S3 API) call failed."""


class R2Unreachable(R2Error):
    """No answer from R2's endpoint at all (DNS, refused, timed out): nothing about the bucket or the keys."""
