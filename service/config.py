"""ServiceConfig: everything the service needs, given to it (it reads no environment itself)."""

from __future__ import annotations

import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from service.clients import ClientTokensError, checked_hashes

MAX_KEEP_DAYS = 3_650  # as `goldgate prune --keep-days`: ten years
MAX_SIGNED_URL_TTL_S = 604_800  # as the spec's api.signed_url_ttl_s
MAX_INPUT_BYTES = 20 * 1024 * 1024  # the most bytes of an input image the GPU worker reads (images/worker)
MAX_JOBS_IN_FLIGHT = 100_000  # as the spec's api.max_jobs_in_flight (goldgate.spec.MAX_JOBS_IN_FLIGHT)
MAX_RATE_LIMIT_PER_MINUTE = 100_000  # as the spec's api.rate_limits (goldgate.spec.MAX_RATE_LIMIT_PER_MINUTE)
MAX_DAILY_SPEND_LIMIT_USD = 1_000_000  # as the spec's (goldgate.spec.MAX_DAILY_SPEND_LIMIT_USD)
# The shortest api_token, webhook_secret and each previous one the service takes; goldgate checks a stack's
# secrets against it (goldgate/local/state.py, infra/program.py) before the service would refuse them.
SECRET_MIN_CHARS = 16
# What previous_secret_problem finds, each said of the previous webhook secret: a caller names that secret (its
# config key, file or Pulumi key) before the clause, and the others after it in its own words.
PREVIOUS_TOO_SHORT = f"is shorter than {SECRET_MIN_CHARS} characters"
PREVIOUS_IS_CURRENT = "holds the same value as the current webhook secret"
PREVIOUS_IS_API_TOKEN = "holds the same value as the API token"
# What current_secrets_problem finds: the secrets at fault, by their service config keys, and what is wrong with
# them, a clause said of those secrets (a caller names each its own way, a file or a Pulumi key, before it).
CURRENT_TOO_SHORT = f"shorter than {SECRET_MIN_CHARS} characters"
CURRENT_ARE_EQUAL = "the same value"
# What previous_token_problem finds, each said of the previous API token (a caller names it before the clause). It
# shares PREVIOUS_TOO_SHORT's words; equal to a webhook secret (the current one or the previous one), any client that
# still holds the old token could sign RunPod's outcomes and result URLs.
TOKEN_PREVIOUS_IS_CURRENT = "holds the same value as the current API token"
TOKEN_PREVIOUS_IS_WEBHOOK_SECRET = "holds the same value as a webhook secret"


class ConfigError(ValueError):
    """The service configuration is missing a key or holds a bad value; the message names the key."""


def previous_secret_problem(previous: str, current: str, api_token: str) -> str | None:
    """Why the service refuses `previous` as the webhook secret before `current` (one of the PREVIOUS_* clauses),
    or None when it takes it. Never a value nor its length: both help a guesser. Equal to the API token, it would
    still sign: a client holding the token could post any job's outcome and open any result."""
    if len(previous) < SECRET_MIN_CHARS:
        return PREVIOUS_TOO_SHORT
    if hmac.compare_digest(previous.encode(), current.encode()):
        return PREVIOUS_IS_CURRENT
    if hmac.compare_digest(previous.encode(), api_token.encode()):
        return PREVIOUS_IS_API_TOKEN
    return None


def previous_token_problem(previous: str, api_token: str, webhook_secrets: tuple[str, ...]) -> str | None:
    """Why the service refuses `previous` as the API token before `api_token` (PREVIOUS_TOO_SHORT or one of the
    TOKEN_PREVIOUS_* clauses), or None when it takes it. `webhook_secrets`: the current webhook secret and, while it
    is rotated too, the previous one. Never a value nor its length: both help a guesser."""
    if len(previous) < SECRET_MIN_CHARS:
        return PREVIOUS_TOO_SHORT
    if hmac.compare_digest(previous.encode(), api_token.encode()):
        return TOKEN_PREVIOUS_IS_CURRENT
    if any(hmac.compare_digest(previous.encode(), secret.encode()) for secret in webhook_secrets if secret):
        return TOKEN_PREVIOUS_IS_WEBHOOK_SECRET
    return None


def current_secrets_problem(api_token: str, webhook_secret: str) -> tuple[tuple[str, ...], str] | None:
    """Why the service refuses this API token and webhook secret, or None when it takes them: the keys at fault
    ("api_token", "webhook_secret": each one too short, or both for being equal) and CURRENT_TOO_SHORT or
    CURRENT_ARE_EQUAL. Never a value nor its length: both help a guesser. Equal, the webhook secret, which signs
    RunPod's outcomes and the result URLs, is one every client holding the token has."""
    short = tuple(name for name, value in (("api_token", api_token), ("webhook_secret", webhook_secret))
                  if len(value) < SECRET_MIN_CHARS)
    if short:
        return short, CURRENT_TOO_SHORT
    if hmac.compare_digest(webhook_secret.encode(), api_token.encode()):
        return ("api_token", "webhook_secret"), CURRENT_ARE_EQUAL
    return None


def daily_spend_limit_ok(limit: float) -> bool:
    """Whether `limit` is a daily spend limit the service takes: US dollars above 0 and at most
    MAX_DAILY_SPEND_LIMIT_USD (the Worker's binding is judged by it too, service/cloudflare_entry.py)."""
    return math.isfinite(limit) and 0 < limit <= MAX_DAILY_SPEND_LIMIT_USD


@dataclass(frozen=True)
class ServiceConfig:
    stack: str
    api_token: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    runpod_api_key: str = field(repr=False)
    runpod_endpoint_base: str  # https://api.runpod.ai/v2/<endpoint_id>
    public_base_url: str  # where RunPod and clients reach this service
    # While the webhook secret is rotated: the one before it, still accepted for the webhooks of jobs in flight
    # and the result URLs handed out (service/signing.py); new URLs are signed with webhook_secret only.
    webhook_secret_previous: str | None = field(default=None, repr=False)
    # While the API token is rotated: the one before it, still accepted as a bearer token (service/signing.py) so
    # clients move to the new one without a 401; a request that used it says so on its log line (data.token).
    api_token_previous: str | None = field(default=None, repr=False)
    # The named clients (service/clients.py): each client's name -> the sha256 (hex) of its token, never the token.
    # None or empty: no client; the API token alone is served.
    client_tokens: Mapping[str, str] | None = field(default=None, repr=False)
    workflows_dir: str | None = None
    execution_timeout_ms: int = 600_000
    ttl_ms: int = 86_400_000
    max_body_bytes: int = 65_536
    # POST /api/inputs: the most bytes an uploaded image may have (20 MiB), and the most pixels its header may give
    # (4096 x 4096): a small file can decode to gigabytes on the GPU worker (a decompression bomb).
    max_input_bytes: int = MAX_INPUT_BYTES
    max_input_pixels: int = 4096 * 4096
    signed_url_ttl_s: int = 3600
    # The most jobs queued or running at RunPod at once: a create beyond it is answered 429 queue_full (jobs.py).
    max_jobs_in_flight: int = 1_000
    # The most creates, and uploads, an API token may send a minute: more are answered 429 rate_limited
    # (service/ratelimit.py). None: no limit (a config from before the stack's api.rate_limits).
    create_rate_limit_per_minute: int | None = None
    inputs_rate_limit_per_minute: int | None = None
    # The most estimated spend (USD) of the jobs that end on a UTC day: at or over it, a create is answered 429
    # spend_limit_reached until the next 00:00 UTC (service/spend.py). None: no limit.
    daily_spend_limit_usd: float | None = None
    # Each named client's own most estimated spend (USD) of its jobs that end on a UTC day, the same for every client:
    # at or over it, that client's create is answered 429 client_spend_limit_reached until the next 00:00 UTC, while
    # other clients and the API token are served (service/spend.py). None: no per-client limit.
    client_daily_spend_limit_usd: float | None = None
    gpu_type: str | None = None
    gpu_count: int = 1
    price_per_gpu_second: float | None = None
    workflow_version: str | None = None
    worker_image_tag: str | None = None
    runpod_timeout_s: float = 10.0
    # Cloudflare Worker only (its Cron Trigger prunes D1, service/cloudflare_entry.py); None: no retention runs
    retention_keep_days: int | None = None
    retention_metrics_keep_days: int | None = None
    # The stack's storage.result_ttl_days: how long the bucket keeps a result after its upload. Only for the
    # words of a 404 result_missing (expired, or lost within the days kept); None (an older config): both.
    result_ttl_days: int | None = None
    # local server only
    host: str = "127.0.0.1"
    port: int = 0
    db_path: str | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_access_key_id: str | None = field(default=None, repr=False)
    s3_secret_access_key: str | None = field(default=None, repr=False)
    apply_migrations_from: str | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ServiceConfig:
        """Validate a JSON-like mapping; unknown keys are refused so a typo cannot go unnoticed."""
        if not isinstance(raw, Mapping):
            raise ConfigError("service config must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(f"unknown service config key(s): {', '.join(unknown)}; "
                              f"known keys: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name, spec in known.items():
            if name not in raw or raw[name] is None:
                continue
            if name == "client_tokens":  # the one key that is no scalar: a JSON object
                try:
                    values[name] = checked_hashes(raw[name], "service config client_tokens")
                except ClientTokensError as exc:
                    raise ConfigError(str(exc)) from None
                continue
            values[name] = _coerce(name, spec.type, raw[name])
        missing = [n for n in ("stack", "api_token", "webhook_secret", "runpod_api_key",
                               "runpod_endpoint_base", "public_base_url") if not values.get(n)]
        if missing:
            raise ConfigError(f"service config is missing required key(s): {', '.join(missing)}")
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        for name in ("execution_timeout_ms", "ttl_ms", "max_body_bytes", "signed_url_ttl_s", "max_jobs_in_flight",
                     "gpu_count", "max_input_bytes", "max_input_pixels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"service config {name} must be a positive integer")
        if self.max_input_bytes > MAX_INPUT_BYTES:  # the worker reads no larger input image (images/worker)
            raise ConfigError(f"service config max_input_bytes must be at most {MAX_INPUT_BYTES} (20 MiB, what the "
                              f"GPU worker reads of an input image), got {self.max_input_bytes}")
        if self.price_per_gpu_second is not None and not (
                math.isfinite(self.price_per_gpu_second) and self.price_per_gpu_second >= 0):
            raise ConfigError("service config price_per_gpu_second must be a non-negative number")
        if self.signed_url_ttl_s > MAX_SIGNED_URL_TTL_S:  # a far expiry overflows the URL's timestamps: every status 500s
            raise ConfigError(f"service config signed_url_ttl_s must be at most {MAX_SIGNED_URL_TTL_S} s (7 days), "
                              f"got {self.signed_url_ttl_s}")
        if self.max_jobs_in_flight > MAX_JOBS_IN_FLIGHT:  # each create counts up to the cap: D1 bills the rows read
            raise ConfigError(f"service config max_jobs_in_flight must be at most {MAX_JOBS_IN_FLIGHT}, "
                              f"got {self.max_jobs_in_flight}")
        if not (math.isfinite(self.runpod_timeout_s) and 0 < self.runpod_timeout_s <= 3600):
            raise ConfigError("service config runpod_timeout_s must be a number of seconds above 0 and at most 3600 "
                              "(how long a call to RunPod may take)")
        for name in ("create_rate_limit_per_minute", "inputs_rate_limit_per_minute"):
            limit = getattr(self, name)
            if limit is not None and not 1 <= limit <= MAX_RATE_LIMIT_PER_MINUTE:
                raise ConfigError(f"service config {name} must be 1..{MAX_RATE_LIMIT_PER_MINUTE} requests a minute "
                                  f"(leave it out for no limit), got {limit}")
        for name in ("daily_spend_limit_usd", "client_daily_spend_limit_usd"):
            limit = getattr(self, name)
            if limit is not None and not daily_spend_limit_ok(limit):
                raise ConfigError(f"service config {name} must be a number of US dollars above 0 and at most "
                                  f"{MAX_DAILY_SPEND_LIMIT_USD} (leave it out for no limit), got {limit}")
        self._check_retention()
        if self.result_ttl_days is not None and not 1 <= self.result_ttl_days <= MAX_KEEP_DAYS:
            raise ConfigError(f"service config result_ttl_days must be 1..{MAX_KEEP_DAYS} days (the stack's "
                              f"storage.result_ttl_days), got {self.result_ttl_days}")
        if not (0 <= self.port <= 65535):
            raise ConfigError("service config port must be 0..65535 (0 picks a free port)")
        for name in ("runpod_endpoint_base", "public_base_url", "s3_endpoint_url"):
            value = getattr(self, name)
            if value is not None and not value.startswith(("http://", "https://")):
                raise ConfigError(f"service config {name} must be an http(s) URL")
        problem = current_secrets_problem(self.api_token, self.webhook_secret)
        if problem is not None:
            keys, clause = problem
            if clause == CURRENT_TOO_SHORT:
                raise ConfigError(f"service config {' and '.join(keys)} must be at least {SECRET_MIN_CHARS} "
                                  "characters")
            # A client holding the token could then post any job's outcome and open any result.
            raise ConfigError("service config api_token and webhook_secret must differ: give each its own random "
                              "value")
        self._check_previous_secret()
        self._check_previous_token()

    def _check_previous_token(self) -> None:
        previous = self.api_token_previous
        if previous is None:
            return
        if not previous:
            raise ConfigError("service config api_token_previous is empty: leave the key out when no previous API "
                              "token is in use")
        problem = previous_token_problem(previous, self.api_token,
                                         (self.webhook_secret, self.webhook_secret_previous or ""))
        if problem is not None:
            raise ConfigError(_PREVIOUS_TOKEN_REFUSED[problem])

    def _check_previous_secret(self) -> None:
        previous = self.webhook_secret_previous
        if previous is None:
            return
        if not previous:
            raise ConfigError("service config webhook_secret_previous is empty: leave the key out when no previous "
                              "webhook secret is in use")
        problem = previous_secret_problem(previous, self.webhook_secret, self.api_token)
        if problem is not None:
            raise ConfigError(_PREVIOUS_REFUSED[problem])

    def _check_retention(self) -> None:
        """The spec's rules (goldgate/spec.py), again here: a hand-set binding must not delete what must be kept."""
        keep, metrics = self.retention_keep_days, self.retention_metrics_keep_days
        if keep is not None and not 1 <= keep <= MAX_KEEP_DAYS:
            raise ConfigError(f"service config retention_keep_days must be 1..{MAX_KEEP_DAYS} days, got {keep}")
        if metrics is None:
            return
        if keep is None:
            raise ConfigError("service config retention_metrics_keep_days needs retention_keep_days: job metrics are "
                              "pruned only together with the jobs")
        if not keep <= metrics <= MAX_KEEP_DAYS:
            raise ConfigError(f"service config retention_metrics_keep_days must be retention_keep_days ({keep}) to "
                              f"{MAX_KEEP_DAYS} days (a job's metrics outlive it), got {metrics}")


_PREVIOUS_REFUSED = {
    PREVIOUS_TOO_SHORT: f"service config webhook_secret_previous must be at least {SECRET_MIN_CHARS} characters, as "
                        "webhook_secret",
    PREVIOUS_IS_CURRENT: "service config webhook_secret_previous equals webhook_secret: to rotate, set "
                         "webhook_secret_previous to the old secret and webhook_secret to a new random value",
    PREVIOUS_IS_API_TOKEN: "service config api_token and webhook_secret_previous must differ: give each its own "
                           "random value",
}

_PREVIOUS_TOKEN_REFUSED = {
    PREVIOUS_TOO_SHORT: f"service config api_token_previous must be at least {SECRET_MIN_CHARS} characters, as "
                        "api_token",
    TOKEN_PREVIOUS_IS_CURRENT: "service config api_token_previous equals api_token: to rotate, set api_token_previous "
                               "to the old token and api_token to a new random value",
    TOKEN_PREVIOUS_IS_WEBHOOK_SECRET: "service config api_token_previous and webhook_secret (or "
                                      "webhook_secret_previous) must differ: give each its own random value",
}


def _coerce(name: str, annotation: str, value: Any) -> Any:
    kind = str(annotation)
    if "int" in kind and "float" not in kind:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"service config {name} must be an integer, got {type(value).__name__}")
        return value
    if "float" in kind:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"service config {name} must be a number, got {type(value).__name__}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"service config {name} must be a string, got {type(value).__name__}")
    return value
