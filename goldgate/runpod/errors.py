"""The RunPod failures a caller can act on, in one hierarchy; messages say what to do and never hold the key."""

from __future__ import annotations

from goldgate.errors import GoldgateError


class RunPodError(GoldgateError):
    """Any failure talking to RunPod. `status` is the HTTP status (None when no response came back)."""

    def __init__(self, message: str, *, status: int | None = None, title: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.detail = detail


class RunPodAuthError(RunPodError):
    """401/403: the API key is missing, wrong, or lacks access to this resource."""


class RunPodNotFound(RunPodError):
    """404: the endpoint or job does not exist (a job also disappears when its ttl expires)."""


class RunPodRateLimited(RunPodError):
    """429 after every allowed retry. `retry_after_s` is the server's advice, when it gave one."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class RunPodUnavailable(RunPodError):
    """5xx or no connection after every allowed retry: RunPod (or the emulator) is down or unreachable."""


class RunPodRejected(RunPodError):
    """400/409/413/422 and other 4xx: RunPod refused the request as sent; fix the request, do not retry."""


class RunPodProtocolError(RunPodError):
    """RunPod answered 2xx with a body this client cannot read (not JSON, or missing required fields), or
    redirected (3xx) the request elsewhere: the base URL is wrong."""
