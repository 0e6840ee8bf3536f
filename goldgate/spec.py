"""StackSpec: the one typed description of a stack, for both targets.

A stack is read from `stacks/local.yaml` (the embedded local target) or from Pulumi stack config
(`stacks/Pulumi.<stack>.yaml`, key `goldgate:spec`, same shape), and validated here with errors
that name the offending field (`stacks/local.yaml: stacks.prod.endpoint.workers_max: ...`).
Secrets are never part of the spec: they live in Pulumi secrets (cloud) or the state dir (local).
"""

from __future__ import annotations

import copy
import difflib
import functools
import ipaddress
import math
import os
import re
import reprlib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import yaml

from goldgate.errors import GoldgateError, SpecError
from goldgate.files import NotARegularFile, open_regular

STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"
LOCAL_STACKS_FILE = STACKS_DIR / "local.yaml"

DIGEST_REF = re.compile(r"^(?P<repo>[a-z0-9][a-z0-9._/:-]*[a-z0-9])@sha256:(?P<hex>[0-9a-f]{64})$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
# Cloudflare's own naming rules, checked here so a name it would refuse fails before `pulumi up` creates anything.
# An R2 bucket: 3-63 lowercase letters, digits and hyphens, beginning and ending with a letter or digit.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_BUCKET_RULE = ("a bucket name R2 accepts (3-63 lowercase letters, digits or hyphens, beginning and ending with a "
                "letter or digit)")
# A Worker: begins with a letter, ends with a letter or digit, at most 63 characters (goldgate keeps to 41).
# (A D1 database name may end with a hyphen, so _NAME is already within Cloudflare's rule for it.)
_WORKER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}[a-z0-9]$")
_WORKER_RULE = ("a Worker name Cloudflare accepts (2-41 lowercase letters, digits or hyphens, beginning with a letter "
                "and ending with a letter or digit)")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# A variable named as a credential (HF_TOKEN, OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY, DB_PASSWORD), word by word:
# TOKENIZERS_PARALLELISM is no token.
_CREDENTIAL_ENV = re.compile(r"(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)"
                             r"(?:_|$)", re.IGNORECASE)
_ENV_KEY = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
# A RunPod registry credential id (e.g. 6n2k8v4d): one path segment, never a host, URL or user name.
REGISTRY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Names RunPod and our own code set; a stack may not override them through endpoint.env.
RESERVED_ENV = frozenset({"WORKFLOW_VERSION", "WORKER_IMAGE_TAG", "STACK", "R2_ENDPOINT_URL", "R2_BUCKET",
                          "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "GPU_TYPE"})
# The worker image's own wiring (start.sh and its Dockerfile set them): ComfyUI's address, where its models are baked,
# its output and input folders, its process. The local target must set them for its emulator, so one given in
# endpoint.env would pass locally and, in the cloud, point the worker at models or a ComfyUI that are not there (or,
# COMFY_INPUT_DIR, at a folder no upload lands in: the worker would never remove them and the disk would fill).
IMAGE_ENV = frozenset({"COMFY_URL", "MODEL_ROOTS", "COMFY_OUTPUT_DIR", "COMFY_INPUT_DIR", "COMFY_PID"})
SCALER_TYPES = ("QUEUE_DELAY", "REQUEST_COUNT")
# RunPod's job ttl counts from submission, queue time included: beyond the execution timeout, a job must be able to
# wait this long for a worker (a cold one pulls the image first) before RunPod may delete it.
MIN_QUEUE_WAIT_MS = 600_000
ROLES = ("staging", "prod")
# api.max_jobs_in_flight's ceiling, as service.config.MAX_JOBS_IN_FLIGHT: each create counts the jobs in flight up
# to the cap (D1 bills every row read), so a cap far above what RunPod can run at once only costs.
MAX_JOBS_IN_FLIGHT = 100_000
# api.max_input_bytes's ceiling and default, as service.config.MAX_INPUT_BYTES: the GPU worker reads no larger input
# image (images/worker/storage.py), so the service may take none larger either. Its floor: below it most images a
# workflow takes are refused, and a limit given in KB or MiB by mistake (20000, 20) is caught.
MAX_INPUT_BYTES = 20 * 1024 * 1024
MIN_INPUT_BYTES = 65_536
# api.max_input_pixels's default (4096 x 4096), as the service's: a small file can decode to gigabytes on the GPU.
DEFAULT_INPUT_PIXELS = 4096 * 4096
# api.rate_limits: the most creates and uploads an API token may send a minute (service/ratelimit.py). The defaults,
# 10 of each a second (an image job is one of each), let a client queue a batch of hundreds at once and stop one stuck
# in a loop; the ceiling is service.config.MAX_RATE_LIMIT_PER_MINUTE: above it a limit is a typo, not a choice.
DEFAULT_CREATE_PER_MINUTE = 600
DEFAULT_INPUTS_PER_MINUTE = 600
MAX_RATE_LIMIT_PER_MINUTE = 100_000
# api.daily_spend_limit_usd's ceiling (service.config.MAX_DAILY_SPEND_LIMIT_USD): above it a limit is a typo. No
# default: an upgraded stack's traffic must not be refused at a number no one chose.
MAX_DAILY_SPEND_LIMIT_USD = 1_000_000

# Every text field: at most this long, and free of control characters (a newline or ESC in a hostname or URL
# reaches the vendor's API, a log line or an HTTP header; U+202E and friends make a value read as another).
MAX_TEXT_CHARS = 1_024
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# A `<PLACEHOLDER>` (as in the shipped stack files) stands for one label; infra's preflight refuses it before
# `pulumi up`, but the stack still loads for the goldgate commands that read it.
_LABEL = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?|<[a-z][a-z0-9_]*>)"
# The hostname rule infra/components/api.py applies to a custom domain: dotted labels, a letters-only TLD.
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$)(?:{_LABEL}\.)+(?:[a-z]{{2,63}}|<[a-z][a-z0-9_]*>)$", re.IGNORECASE)
_HOSTNAME_RULE = ("dot-separated labels of letters, digits and hyphens (at most 63 characters each, 253 in all) "
                  "ending in a top-level domain")
# Plain http only to this machine (a local emulator or stand-in), as infra/program.py `secure_url` allows.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_ZONE_ID = re.compile(r"^[0-9a-f]{32}$|^<[A-Z_]+>$")
_ZONE_RULE = "a Cloudflare zone id (32 lowercase hex digits, from the zone's Overview page)"
# R2 location hints and D1 primary location hints (Cloudflare's data-location docs list the same six).
LOCATION_HINTS = ("wnam", "enam", "weur", "eeur", "apac", "oc")
_DATA_CENTER_ID = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$")
_DATA_CENTER_RULE = "a RunPod data center id (upper-case letters, digits and hyphens, e.g. US-TX-3)"
# A RunPod serverless GPU pool id, as GET /v2/catalog/gpus lists each GPU type's `pool` (ADA_24, AMPERE_80, ADA_48_PRO):
# REST v2 places workers by pool. A GPU type id ("NVIDIA GeForce RTX 4090", what endpoint.cost_gpu_type names, and
# what older RunPod APIs took) names no pool, and would reach RunPod only at `pulumi up`, after Cloudflare's resources.
_GPU_POOL = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
_GPU_POOL_RULE = ("a RunPod GPU pool id (upper-case letters, digits and underscores, as GET /v2/catalog/gpus lists each "
                  "GPU type's `pool`, e.g. ADA_24; a GPU type id, a card's name, names no pool: it belongs in "
                  "endpoint.cost_gpu_type)")


def is_digest_ref(image: str) -> bool:
    """True for `repo@sha256:<64 hex>`, the only image form a stack may run (nothing before or after it)."""
    return isinstance(image, str) and DIGEST_REF.fullmatch(image) is not None


class _Shown(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        # Python refuses to print an integer of over 4,300 digits (ValueError); a long one is cut as text is.
        if x.bit_length() <= 1_000:
            return super().repr_int(x, level)
        try:
            return f"<an integer of {len(str(abs(x)))} digits>"
        except ValueError:
            return "<an integer of over 4300 digits>"


# How a bad value is quoted in an error (here and in golden case files): bounded, so a huge value or a YAML alias
# bomb cannot swamp the message.
_SHOW = _Shown()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 80, 80
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 4


def show(value: Any) -> str:
    return _SHOW.repr(value)


def show_url(value: Any) -> str:
    """A URL (or what was given as one) quoted as `show` does, without the user name and password it may carry
    before its host (`https://user:pass@host`): a secret given in the wrong place is never repeated in an error."""
    if isinstance(value, str):
        scheme, sep, rest = value.partition("://")
        if not sep:
            scheme, rest = "", value
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        at = rest.rfind("@", 0, end)
        if at >= 0:
            value = f"{scheme}{sep}<hidden>@{rest[at + 1:]}"
    return show(value)


@dataclass(frozen=True)
class EndpointSpec:
    """The RunPod serverless endpoint's shape.

    A private worker image needs a RunPod registry credential, given one of two ways (cloud stacks only):
    - `registry_credential_id`: an existing credential's id (RunPod console or `GET /v2/registries`);
      an id is not a secret.
    - `manage_registry_credential: true`: goldgate creates, rotates and deletes the credential itself
      from the secret Pulumi config `goldgate:registryUsername` / `goldgate:registryPassword`.
    Neither: RunPod pulls the image anonymously."""

    name: str
    gpu_pools: tuple[str, ...]
    cost_gpu_type: str = "NVIDIA GeForce RTX 4090"
    gpu_count: int = 1
    workers_min: int = 0
    workers_max: int = 3
    idle_timeout_s: int = 5
    scaler_type: str = "QUEUE_DELAY"
    scaler_value: int = 4
    flashboot: bool = True
    execution_timeout_ms: int = 600_000
    ttl_ms: int = 86_400_000
    network_volume_id: str | None = None
    data_center_ids: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    registry_credential_id: str | None = None
    manage_registry_credential: bool = False

    @property
    def pulls_privately(self) -> bool:
        return self.registry_credential_id is not None or self.manage_registry_credential

    def worker_timeouts(self) -> dict[str, str]:
        """The worker's own bounds (COMFY_JOB_TIMEOUT_S from the job's start, COMFY_READY_TIMEOUT_S for a cold
        start) inside the execution timeout, with a tenth of it (at most 60 s) left to upload the results and
        answer RunPod: the worker's clear error and its cancel of the prompt come before RunPod ends the job
        as TIMED_OUT. `env` may still set either."""
        total_s = self.execution_timeout_ms / 1000
        job_s = total_s - min(60.0, total_s / 10)
        return {"COMFY_JOB_TIMEOUT_S": f"{job_s:g}", "COMFY_READY_TIMEOUT_S": f"{min(300.0, job_s):g}"}


# How long a D1 backup is kept: in R2 under `backups/` (a Pulumi-owned lifecycle rule) and, on the local target,
# under `<home>/backups/<stack>/` (each drill prunes). Longer than D1 Time Travel's 30 days, so that a backup can
# still bring back what Time Travel no longer reaches.
DEFAULT_BACKUP_RETENTION_DAYS = 90
# R2's lifecycle rule deletes by age alone, the newest backup too: at least a week lets a daily drill fail for days
# (the checklist turns red after 25 hours) before the last backup goes.
MIN_BACKUP_RETENTION_DAYS = 7
BACKUP_BUCKET_SUFFIX = "-backups"  # storage.backup_bucket's default: the results bucket's name and this


@dataclass(frozen=True)
class StorageSpec:
    """The R2 results bucket, and the bucket the cloud DR drill keeps D1 backups in for `backup_retention_days`.

    Two buckets because an R2 token reaches whole buckets: the RunPod workers hold a token for the results bucket
    (they upload there, from GPU machines that run ComfyUI's custom nodes), and a backup in that bucket, every job's
    inputs and outcome, was theirs to read, overwrite or delete. The backups bucket has a token of its own."""

    bucket: str
    location: str | None = None
    jurisdiction: str = "default"
    result_ttl_days: int = 30
    backup_retention_days: int = DEFAULT_BACKUP_RETENTION_DAYS
    backup_bucket: str = ""  # the loader fills it: `<bucket>-backups` unless given

    def __post_init__(self) -> None:
        if not self.backup_bucket:
            object.__setattr__(self, "backup_bucket", default_backup_bucket(self.bucket))


def default_backup_bucket(bucket: str) -> str:
    """`<bucket>-backups`, the results bucket's name cut to fit R2's 63 characters (the cross-stack guardrail
    refuses two stacks whose cut names meet)."""
    return f"{bucket[:63 - len(BACKUP_BUCKET_SUFFIX)]}{BACKUP_BUCKET_SUFFIX}"


@dataclass(frozen=True)
class RetentionSpec:
    """What the API Worker's Cron Trigger prunes from D1, on `cron` (UTC), as `goldgate prune --keep-days keep_days
    [--metrics-keep-days metrics_keep_days]` would; on the local target the stack host runs it on the same schedule
    over the stack's SQLite (goldgate.local.retention_cron)."""

    keep_days: int
    cron: str
    metrics_keep_days: int | None = None


@dataclass(frozen=True)
class DatabaseSpec:
    """The D1 database (jobs, deliveries, job_metrics)."""

    name: str
    location_hint: str | None = None
    protect: bool = False
    retention: RetentionSpec | None = None


@dataclass(frozen=True)
class RateLimitsSpec:
    """api.rate_limits: per API token, a minute, counted per Cloudflare location (a soft limit); more are answered
    429 rate_limited. Each route's Workers Rate Limiting binding gets a namespace id derived from the Worker's
    script name (infra/components/api.py), so no stack sets one."""

    create_per_minute: int = DEFAULT_CREATE_PER_MINUTE  # POST /api/queue/create
    inputs_per_minute: int = DEFAULT_INPUTS_PER_MINUTE  # POST /api/inputs


@dataclass(frozen=True)
class ApiSpec:
    """The API Worker."""

    script_name: str
    public_base_url: str | None = None
    route: str | None = None
    zone_id: str | None = None
    custom_domain: str | None = None
    # workers.dev stays enabled beside custom_domain or route: for the switch to it, while jobs sent before
    # still hold webhook and result URLs at workers.dev (infra/components/api.py kept_workers_dev).
    keep_workers_dev: bool = False
    max_body_bytes: int = 65_536
    signed_url_ttl_s: int = 3_600
    # The most jobs queued or running at RunPod at once (service/jobs.py): a create over it is answered 429.
    max_jobs_in_flight: int = 1_000
    # POST /api/inputs: the most bytes an uploaded image may have, and the most pixels its header may give.
    max_input_bytes: int = MAX_INPUT_BYTES
    max_input_pixels: int = DEFAULT_INPUT_PIXELS
    compatibility_date: str = "2025-09-01"
    rate_limits: RateLimitsSpec = RateLimitsSpec()
    # Cloudflare's Smart Placement: run the Worker near what it calls (D1, RunPod) rather than near each caller. Every
    # request makes several D1 round trips one after another; false keeps each request where it came in.
    smart_placement: bool = True
    # The most estimated GPU spend (USD) of the jobs that end on a UTC day: at or over it, a create is answered 429
    # spend_limit_reached until the next 00:00 UTC (service/spend.py). None: no limit.
    daily_spend_limit_usd: float | None = None
    # Each named client's own most estimated GPU spend (USD) of its jobs that end on a UTC day, the same for every
    # client: at or over it, that client's create is answered 429 client_spend_limit_reached until the next 00:00 UTC,
    # while other clients and the API token are served (service/spend.py). None: no per-client limit.
    client_daily_spend_limit_usd: float | None = None


@dataclass(frozen=True)
class Thresholds:
    """Release gates: golden latency (the checklist's exit criterion is a 6-minute mean) and error rate."""

    golden_mean_latency_s: float = 360.0
    golden_case_latency_s: float = 600.0
    error_rate: float = 0.05
    report_max_age_s: int = 86_400


@dataclass(frozen=True)
class Faults:
    """Chaos knobs for the local RunPod emulator (a user's drill, or a test); the emulator's own type.

    Every per-job decision is a pure function of (seed, job id, what), so a seed picks the same jobs
    whatever the thread timing.

    - duplicate_deliveries: each webhook is sent this many times (1 = no duplicates).
    - reorder: each delivery is held a random 0..reorder_window_s, so later-finished jobs often
      arrive first and copies interleave.
    - drop_first_delivery_rate: fraction of jobs whose first attempt (of each copy) is lost; the
      vendor's retry after webhook_retry_delay_s delivers it.
    - drop_all_deliveries_rate: fraction of jobs whose webhook never arrives: recovery is needed.
    - delivery_delay_s / delivery_delay_rate: hold that fraction of deliveries this long first.
    - worker_crash_rate: fraction of jobs whose worker process is killed (SIGKILL) just after it
      took the job, on the job's first attempt only.
    - failed_rate: fraction of jobs the emulator fails itself (FAILED, error names the injection).
    - cold_start_s: extra delay before each worker process starts (a slow image pull)."""

    duplicate_deliveries: int = 1
    reorder: bool = False
    reorder_window_s: float = 1.0
    drop_first_delivery_rate: float = 0.0
    drop_all_deliveries_rate: float = 0.0
    delivery_delay_s: float = 0.0
    delivery_delay_rate: float = 1.0
    worker_crash_rate: float = 0.0
    crash_after_s: float = 0.05
    failed_rate: float = 0.0
    cold_start_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.duplicate_deliveries < 1:
            raise SpecError("faults.duplicate_deliveries must be at least 1 (1 means no duplicates)")
        for name in ("drop_first_delivery_rate", "drop_all_deliveries_rate", "delivery_delay_rate",
                     "worker_crash_rate", "failed_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SpecError(f"faults.{name} must be a fraction between 0 and 1 (got {value})")
        for name in ("reorder_window_s", "delivery_delay_s", "crash_after_s", "cold_start_s"):
            if getattr(self, name) < 0:
                raise SpecError(f"faults.{name} must not be negative")


@dataclass(frozen=True)
class LocalSpec:
    """What only the embedded target needs.

    - result_retention_s: how long the local RunPod keeps a finished async job's result for /status. RunPod keeps
      it 30 minutes (the default and the most); less rehearses `goldgate recover` after RunPod forgot the job."""

    webhook_retry_delay_s: float = 10.0
    comfy_startup_s: float = 0.5
    rate_limit_per_10s: int = 1_000
    result_retention_s: float = 1800.0
    faults: Faults = Faults()


@dataclass(frozen=True)
class CloudSpec:
    """Account coordinates for the cloud target (ids, never secrets)."""

    cloudflare_account_id: str
    runpod_api_base: str = "https://api.runpod.io"
    runpod_endpoint_base: str = "https://api.runpod.ai/v2"


@dataclass(frozen=True)
class StackSpec:
    """One stack, validated. `image` is None only for a local stack nothing was deployed to yet."""

    name: str
    role: str
    target: str
    workflow_version: str
    endpoint: EndpointSpec
    storage: StorageSpec
    database: DatabaseSpec
    api: ApiSpec
    thresholds: Thresholds = Thresholds()
    prices_per_gpu_second: Mapping[str, float] = field(default_factory=dict)
    image: str | None = None
    local: LocalSpec | None = None
    cloud: CloudSpec | None = None

    @property
    def is_prod(self) -> bool:
        return self.role == "prod"

    def price_per_gpu_second(self, gpu_type: str | None = None) -> float | None:
        """The stack's price for a GPU type (default: the one costs assume); None defers to the vendor table."""
        return self.prices_per_gpu_second.get(gpu_type or self.endpoint.cost_gpu_type)

    def with_image(self, image: str) -> StackSpec:
        if not is_digest_ref(image):
            raise SpecError(f"{self.name}: image {image!r} is not pinned by digest (repo@sha256:<64 hex>)")
        return _replace(self, image=image)

    def resource_names(self) -> dict[str, str]:
        """Every cloud resource name, derived from the stack in one place."""
        return {
            "endpoint": self.endpoint.name,
            "bucket": self.storage.bucket,
            "backup_bucket": self.storage.backup_bucket,
            "database": self.database.name,
            "script": self.api.script_name,
        }


def _replace(spec: StackSpec, **changes: Any) -> StackSpec:
    from dataclasses import replace

    return replace(spec, **changes)


class _Fields:
    """Reads one mapping, naming the dotted path of any bad or unknown field in its errors."""

    def __init__(self, raw: Any, where: str, source: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise SpecError(f"{source}: {where}: expected a mapping, got {type(raw).__name__}")
        self.raw, self.where, self.source, self.used = raw, where, source, set()

    def _err(self, key: str, msg: str) -> SpecError:
        return SpecError(f"{self.source}: {self.where}.{key}: {msg}")

    def _get(self, key: str, required: bool) -> Any:
        self.used.add(key)
        if key not in self.raw or self.raw[key] is None:
            if required:
                raise self._err(key, "is required")
            return None
        return self.raw[key]

    def str(self, key: str, default: str | None = None, required: bool = False,
            pattern: re.Pattern[str] | None = None, choices: tuple[str, ...] | None = None,
            rule: str | None = None, url: bool = False) -> str | None:
        """A text field; `url`: it holds a URL or host, quoted in errors without any credentials it carries."""
        value = self._get(key, required and default is None)
        if value is None:
            return default
        quote = show_url if url else show
        if not isinstance(value, str) or not value.strip():
            raise self._err(key, f"expected a non-empty string, got {quote(value)}")
        self.text(key, value, quote)
        if pattern and not pattern.fullmatch(value):
            raise self._err(key, f"{quote(value)} is not {rule}" if rule
                            else f"{quote(value)} does not match {pattern.pattern}")
        if choices and value not in choices:
            raise self._err(key, f"{quote(value)} is not {rule} (one of {', '.join(choices)})" if rule
                            else f"{quote(value)} is not one of {', '.join(choices)}")
        return value

    def text(self, key: str, value: str, quote: Callable[[Any], str] = show) -> None:
        """Refuse an oversized value or one holding a control character, whatever the field; `quote` says how the
        error names the value (an endpoint.env value may be a token: it is named, never quoted)."""
        if len(value) > MAX_TEXT_CHARS:
            raise self._err(key, f"{quote(value)} is {len(value):,} characters long; at most {MAX_TEXT_CHARS:,} are "
                                 "accepted")
        bad = next((i for i, c in enumerate(value) if unicodedata.category(c) in _CONTROL_CATEGORIES), None)
        if bad is not None:
            raise self._err(key, f"{quote(value)} contains a control character (U+{ord(value[bad]):04X} at "
                                 f"position {bad}); retype the value")

    def num(self, key: str, default: float, lo: float | None = None, hi: float | None = None,
            integer: bool = False) -> Any:
        value = self._get(key, False)
        if value is None:
            return default
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if not ok or isinstance(value, bool) or (isinstance(value, float) and math.isnan(value)):
            raise self._err(key, f"expected {'an integer' if integer else 'a number'}, got {show(value)}")
        if lo is not None and value < lo:  # quoted by `show`: a 4,000-digit number is no message
            raise self._err(key, f"{show(value)} is below the minimum {lo}")
        if hi is not None and value > hi:
            raise self._err(key, f"{show(value)} is above the maximum {hi}")
        return value

    def bool(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._err(key, f"expected true or false, got {show(value)}")
        return value

    def strs(self, key: str, required: bool = False, pattern: re.Pattern[str] | None = None,
             rule: str | None = None) -> tuple[str, ...]:
        value = self._get(key, required)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._err(key, f"expected a list of strings, got {show(value)}")
        if required and not value:
            raise self._err(key, "must name at least one entry")
        for item in value:
            self.text(key, item)
            if pattern and not pattern.fullmatch(item):
                raise self._err(key, f"{show(item)} is not {rule}")
        return tuple(value)

    def sub(self, key: str, required: bool = False) -> _Fields:
        return _Fields(self._get(key, required), f"{self.where}.{key}", self.source)

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.used, key=str)
        if unknown:  # a plain name as it is; anything else (huge, control characters) quoted and shortened
            names = [k if isinstance(k, str) and _FIELD_NAME.fullmatch(k) else show(k) for k in unknown[:10]]
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise SpecError(f"{self.source}: {self.where}: unknown field(s) {', '.join(names)}{more}")


def _registry_credential_id(f: _Fields) -> str | None:
    value = f.str("registry_credential_id")
    if value is not None and not REGISTRY_ID.match(value):
        raise f._err("registry_credential_id", f"{show(value)} is not a RunPod registry credential id: expected "
                                               "letters, digits, '_' or '-' (e.g. 6n2k8v4d), the id from RunPod's "
                                               "console or GET /v2/registries, not a registry host, image or user name")
    return value


def _custom_domain(f: _Fields) -> str | None:
    """A Workers Custom Domain: the bare hostname, which also becomes RunPod's webhook base (https://<it>)."""
    value = f.str("custom_domain", url=True)
    if value is None or _HOSTNAME.fullmatch(value):
        return value
    if any(c in value for c in "/:@"):
        raise f._err("custom_domain", f"{show_url(value)} is a URL, not a hostname: give the bare name "
                                      "(api.example.com), without scheme, port or path")
    raise f._err("custom_domain", f"{show_url(value)} is not a hostname: {_HOSTNAME_RULE}, no wildcard")


def _route_problem(pattern: str) -> str | None:
    """Why Cloudflare would refuse a Workers route pattern (developers.cloudflare.com/workers/configuration/routing/
    routes/#validity): `[http[s]://][*[.]]host[/path[*]]`, no query, wildcards only there; None if it would not."""
    rest = pattern
    scheme, sep, after = pattern.partition("://")
    if sep:
        if scheme not in ("http", "https"):
            return f"it may begin with http:// or https:// only, not {show(scheme + sep)}"
        rest = after
    if "?" in rest:
        return "route patterns may not contain query parameters"
    host, _, path = rest.partition("/")
    name = host.removeprefix("*").removeprefix(".") if host.startswith("*") else host
    if not name:
        return "it must name the zone's host (e.g. api.example.com/*); a bare * matches no zone given by zone_id"
    if "*" in name:
        return "a wildcard (*) may appear only at the start of the host (*example.com, *.example.com)"
    if "*" in path.rstrip("*"):
        return "a wildcard (*) may appear only at the end of the path (no infix wildcards such as /*.jpg)"
    if not _HOSTNAME.fullmatch(name):
        return f"host {show_url(name)} is not a hostname: {_HOSTNAME_RULE}"
    return None


def _route(f: _Fields) -> str | None:
    value = f.str("route", url=True)
    problem = value and _route_problem(value)
    if problem:
        raise f._err("route", f"{show_url(value)} is not a Workers route pattern Cloudflare accepts: {problem}")
    return value


def url_problem(url: str) -> str | None:
    """Why a base URL is not an absolute https:// URL the service can append paths to; None if it is one."""
    if any(c.isspace() for c in url):
        return "it contains whitespace"
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a port out of range or not a number
    except ValueError as exc:
        return f"it is not a URL ({exc})"
    if not parts.scheme:
        return "no scheme: begin it with https://"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be https://"
    if not host:
        return "no host"
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        return f"plain http:// is allowed only to this machine ({', '.join(sorted(LOOPBACK_HOSTS))})"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "it has a query or fragment; paths are appended to it"
    if parts.username is not None or parts.password is not None:
        return "it holds a user name or password; credentials belong in Pulumi secrets"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost" and not _HOSTNAME.fullmatch(host):
            return f"host {show(host)} is not a hostname: {_HOSTNAME_RULE}"
    return None


# Cloudflare's own API: the Pulumi provider's default, and goldgate's (goldgate.cloudflare.api.DEFAULT_API_BASE).
CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"


def checked_cloudflare_api_base(value: Any, where: str) -> str:
    """`goldgate:cloudflareApiBase` as every reader of a stack takes it (the Pulumi program, the operations
    commands): unset or empty is Cloudflare's own API; anything else must be an https:// URL (plain http:// only to
    this machine), since the API token travels to it. `where` names the stack or file in the refusal."""
    # Only unset or "" is the default: another value that reads as false (`false`, `0` in YAML) is the text
    # "false" to the program's Pulumi config, which refuses it; a reader of the file must not take Cloudflare's API.
    base = CLOUDFLARE_API if value is None or value == "" else value
    problem = url_problem(base) if isinstance(base, str) else "it is not a text value"
    if problem:
        # The token would go in clear text only over plain http://; another refusal (a query, a user name) is not that.
        clear = "; the Cloudflare API token would travel in clear text" if problem.startswith("plain http://") else ""
        raise SpecError(f"{where}: goldgate:cloudflareApiBase {show_url(base)} is not an https:// URL the Cloudflare "
                        f"API token may be sent to ({problem}){clear}")
    return base


def _base_url(f: _Fields, key: str, default: str | None = None) -> str | None:
    value = f.str(key, default=default, url=True)
    problem = value and url_problem(value)
    if problem:
        raise f._err(key, f"{show_url(value)} is not an absolute https:// URL: {problem}")
    return value


def _public_base_url(f: _Fields) -> str | None:
    """Where clients and RunPod's webhooks reach the API: the root of a host, since the API Worker answers /api/...
    and /healthz there whatever the URL says."""
    value = _base_url(f, "public_base_url")
    if value and urlsplit(value).path.strip("/"):
        raise f._err("public_base_url", f"{show_url(value)} is not where the API answers: it serves /api/... and "
                                        "/healthz at its host's root, so give the URL without a path (e.g. "
                                        f"{show_url(value[:len(value) - len(urlsplit(value).path)])})")
    return value


def _max_input_bytes(f: _Fields) -> int:
    """api.max_input_bytes: MIN_INPUT_BYTES to MAX_INPUT_BYTES, each bound refused with its reason."""
    value = f.num("max_input_bytes", MAX_INPUT_BYTES, None, None, integer=True)
    if value < MIN_INPUT_BYTES:
        raise f._err("max_input_bytes", f"{show(value)} is below the minimum {MIN_INPUT_BYTES} (64 KiB): a smaller "
                                        "limit refuses most images a workflow takes; give the limit in bytes "
                                        f"(default and at most {MAX_INPUT_BYTES}, 20 MiB)")
    if value > MAX_INPUT_BYTES:
        raise f._err("max_input_bytes", f"{show(value)} is above the maximum {MAX_INPUT_BYTES} (20 MiB): the GPU "
                                        "worker reads no larger input image, so a job given one would fail; use "
                                        f"{MAX_INPUT_BYTES} or less")
    return int(value)


def _daily_spend_limit(f: _Fields, key: str = "daily_spend_limit_usd") -> float | None:
    """api.daily_spend_limit_usd, or api.client_daily_spend_limit_usd (`key`, each client's own): a number of US
    dollars above 0 and at most MAX_DAILY_SPEND_LIMIT_USD; absent or null, no limit (0 would refuse every create:
    leave the field out to have none)."""
    value = f._get(key, False)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise f._err(key, f"expected a number of US dollars (e.g. 250), got {show(value)}; leave it out for no limit")
    # an int is finite, and one of a few hundred digits is no float: math.isfinite would raise OverflowError
    if isinstance(value, float) and not math.isfinite(value):
        raise f._err(key, f"{show(value)} is no amount: give a number of US dollars above 0 and at most "
                          f"{MAX_DAILY_SPEND_LIMIT_USD}, or leave it out for no limit")
    if value <= 0:
        raise f._err(key, f"{show(value)} is not above 0: it would refuse every create; give the most a day may "
                          f"spend (US dollars, at most {MAX_DAILY_SPEND_LIMIT_USD}), or leave it out for no limit")
    if value > MAX_DAILY_SPEND_LIMIT_USD:
        raise f._err(key, f"{show(value)} is above the maximum {MAX_DAILY_SPEND_LIMIT_USD} US dollars a day; use "
                          f"{MAX_DAILY_SPEND_LIMIT_USD} or less, or leave it out for no limit")
    return float(value)


def _rate_limits(f: _Fields) -> RateLimitsSpec:
    """api.rate_limits: each a whole number of requests a minute, 1 to MAX_RATE_LIMIT_PER_MINUTE; no limit is off."""
    def per_minute(key: str, default: int, route: str) -> int:
        value = f.num(key, default, None, None, integer=True)
        if value < 1:
            raise f._err(key, f"{show(value)} is below the minimum 1: it would refuse every {route}, and the limit "
                              f"cannot be turned off; to lift it, set it higher (at most {MAX_RATE_LIMIT_PER_MINUTE}; "
                              f"default {default})")
        if value > MAX_RATE_LIMIT_PER_MINUTE:
            raise f._err(key, f"{show(value)} is above the maximum {MAX_RATE_LIMIT_PER_MINUTE} requests a minute; "
                              f"use {MAX_RATE_LIMIT_PER_MINUTE} or less (default {default})")
        return int(value)

    limits = RateLimitsSpec(create_per_minute=per_minute("create_per_minute", DEFAULT_CREATE_PER_MINUTE,
                                                         "create (POST /api/queue/create)"),
                            inputs_per_minute=per_minute("inputs_per_minute", DEFAULT_INPUTS_PER_MINUTE,
                                                         "upload (POST /api/inputs)"))
    f.done()
    return limits


def _compatibility_date(f: _Fields) -> str:
    """The Worker's compatibility date: a real calendar date, not after today (Cloudflare refuses the upload)."""
    value = f.str("compatibility_date", default="2025-09-01", pattern=re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    assert value is not None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise f._err("compatibility_date", f"{show(value)} is not a calendar date (YYYY-MM-DD)") from None
    if day > datetime.now(UTC).date() + timedelta(days=1):  # a day's grace for time zones
        raise f._err("compatibility_date", f"{show(value)} is in the future, which Cloudflare refuses: use today's "
                                           "date or an earlier one")
    return value


# A Cron Trigger's schedule as Cloudflare documents it: five fields (minute hour day-of-month month day-of-week, UTC),
# each a list of values, ranges and steps; names (JAN, MON) only for months and weekdays; L and W only in the day of
# month, L and # only in the day of week. Its weekdays are 1-7 with 1 for Sunday (Quartz), not crontab's 0-6 from
# Sunday: `* * * * 0` is refused, and `1-5` would be Sunday to Thursday. No seconds or year field, no @daily.
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_CRON_FIELDS = (("minute", 0, 59, "", ()), ("hour", 0, 23, "", ()), ("day of month", 1, 31, "LW", ()),
                ("month", 1, 12, "", _MONTHS), ("day of week", 1, 7, "L#", _WEEKDAYS))
_CRON_RULE = "a cron expression Cloudflare accepts: five fields, minute hour day-of-month month day-of-week (UTC)"


def _cron_field_problem(part: str, name: str, lo: int, hi: int, extra: str, names: tuple[str, ...]) -> str | None:
    bare = re.sub("|".join(names), "", part.upper()) if names else part.upper()
    if not re.fullmatch(rf"[0-9*,/{re.escape(extra)}-]*", bare):  # * here: a lone name leaves nothing
        return f"the {name} field {show(part)} holds a character or name Cloudflare does not accept there"
    if re.search(r"/0*(?:[^0-9]|$)", bare):
        return f"the {name} field {show(part)} has a step that is not a positive number"
    bad = next((n for n in re.findall(r"(?<![/#\d])\d+", bare) if not lo <= int(n) <= hi), None)
    if bad is not None:
        weekdays = "; Cloudflare's weekdays are 1-7 with 1 for Sunday, or SUN-SAT" if name == "day of week" else ""
        return f"the {name} field {show(part)} names {bad}, outside {lo}-{hi}{weekdays}"
    return None


def _cron_problem(expression: str) -> str | None:
    parts = expression.split()
    if len(parts) != 5:
        return f"it has {len(parts)} field(s), not 5 (e.g. '30 3 * * *' is daily at 03:30 UTC)"
    for part, rule in zip(parts, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(part, *rule)
        if problem:
            return problem
    return None


def _retention(f: _Fields, result_ttl_days: int) -> RetentionSpec | None:
    """database.retention: N >= the R2 result ttl (a job keeps its row while its images exist), M >= N."""
    if f._get("retention", False) is None:
        return None
    r = f.sub("retention")
    keep_days = r.num("keep_days", None, 1, 3_650, integer=True)
    if keep_days is None:
        raise r._err("keep_days", "is required (days a finished job is kept; at least storage.result_ttl_days)")
    if keep_days < result_ttl_days:
        raise r._err("keep_days", f"{keep_days} is below storage.result_ttl_days ({result_ttl_days}): jobs whose "
                                  f"results R2 still holds would lose their rows; use {result_ttl_days} or more")
    metrics_keep_days = r.num("metrics_keep_days", None, 1, 3_650, integer=True)
    if metrics_keep_days is not None and metrics_keep_days < keep_days:
        raise r._err("metrics_keep_days", f"{metrics_keep_days} is below keep_days ({keep_days}): a job's metrics are "
                                          f"kept at least as long as the job; use {keep_days} or more")
    cron = r.str("cron", required=True)
    assert cron is not None
    problem = _cron_problem(cron)
    if problem:
        raise r._err("cron", f"{show(cron)} is not {_CRON_RULE}: {problem}")
    r.done()
    return RetentionSpec(keep_days=keep_days, cron=" ".join(cron.split()), metrics_keep_days=metrics_keep_days)


def _backup_retention_days(f: _Fields) -> int:
    days = f.num("backup_retention_days", DEFAULT_BACKUP_RETENTION_DAYS, None, 3650, integer=True)
    if days < MIN_BACKUP_RETENTION_DAYS:
        raise f._err("backup_retention_days", f"{days} is below {MIN_BACKUP_RETENTION_DAYS}: R2's lifecycle rule "
                                              "deletes a backup by its age alone, the newest too, so a few days of "
                                              "failed daily drills would leave no backup at all; use "
                                              f"{MIN_BACKUP_RETENTION_DAYS} or more")
    return int(days)


def _backup_bucket(f: _Fields, bucket: str) -> str:
    """The D1 backups' own bucket (StorageSpec): given, or `<bucket>-backups`; never the results bucket."""
    value = f.str("backup_bucket", pattern=_BUCKET_NAME, rule=_BUCKET_RULE)
    if value is None and default_backup_bucket(bucket) == bucket:  # 63 characters ending in -backups
        raise f._err("backup_bucket", f"is needed: the default, the results bucket's name cut to 63 characters "
                                      f"and {BACKUP_BUCKET_SUFFIX}, is {bucket!r} itself; name the bucket the D1 "
                                      "backups go to")
    if value is None:
        return default_backup_bucket(bucket)
    if value == bucket:
        raise f._err("backup_bucket", f"{value!r} is the results bucket: the RunPod workers hold a token for that "
                                      "bucket, which would let them read, overwrite or delete every backup; name "
                                      "another bucket")
    return value


def _endpoint(f: _Fields, stack: str) -> EndpointSpec:
    env_raw = f._get("env", False) or {}
    if not isinstance(env_raw, Mapping):
        raise f._err("env", "expected a mapping of NAME: value")
    env: dict[str, str] = {}
    for k, v in env_raw.items():
        if not isinstance(k, str) or not _ENV_KEY.fullmatch(k):
            raise f._err("env", f"{show(k)} is not a valid environment variable name")
        if k in RESERVED_ENV:
            raise f._err("env", f"{k} is set by goldgate from the stack; remove it from endpoint.env" +
                         (" (endpoint.cost_gpu_type sets it)" if k == "GPU_TYPE" else ""))
        if k in IMAGE_ENV:
            raise f._err("env", f"{k} is the worker image's own setting (its models are baked in, ComfyUI runs beside "
                                "the handler); the local target sets its own, so a value here would pass locally and "
                                "break the cloud's workers: remove it from endpoint.env")
        if _CREDENTIAL_ENV.search(k):
            # goldgate:spec is a plain, committed config value, and RunPod shows an endpoint's env in its console.
            raise f._err("env", f"{k} looks like a credential, and endpoint.env is committed in plain text (RunPod "
                                "shows it too): the worker needs none beyond what goldgate gives it (its models are "
                                "baked in at build time); remove it, and rotate it if the file was shared or pushed")
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise f._err("env", f"{k}: value must be a string or number")
        env[k] = str(v)
        f.text("env", env[k], lambda _value, name=k: f"{name}: the value")  # may be a token: named, never quoted
    spec = EndpointSpec(
        name=f.str("name", default=f"goldgate-{stack}", pattern=_NAME),
        gpu_pools=f.strs("gpu_pools", required=True, pattern=_GPU_POOL, rule=_GPU_POOL_RULE),
        cost_gpu_type=f.str("cost_gpu_type", default="NVIDIA GeForce RTX 4090"),
        gpu_count=f.num("gpu_count", 1, 1, 8, integer=True),
        workers_min=f.num("workers_min", 0, 0, 100, integer=True),
        workers_max=f.num("workers_max", 3, 1, 100, integer=True),
        idle_timeout_s=f.num("idle_timeout_s", 5, 1, 3600, integer=True),
        scaler_type=f.str("scaler_type", default="QUEUE_DELAY", choices=SCALER_TYPES),
        scaler_value=f.num("scaler_value", 4, 1, 1000, integer=True),
        flashboot=f.bool("flashboot", True),
        execution_timeout_ms=f.num("execution_timeout_ms", 600_000, 5_000, 86_400_000, integer=True),
        ttl_ms=f.num("ttl_ms", 86_400_000, 10_000, 604_800_000, integer=True),
        network_volume_id=f.str("network_volume_id"),
        data_center_ids=f.strs("data_center_ids", pattern=_DATA_CENTER_ID, rule=_DATA_CENTER_RULE),
        env=env,
        registry_credential_id=_registry_credential_id(f),
        manage_registry_credential=f.bool("manage_registry_credential", False),
    )
    f.done()
    if spec.registry_credential_id is not None and spec.manage_registry_credential:
        raise SpecError(f"{f.source}: {f.where}: registry_credential_id and manage_registry_credential are both set: "
                        "use an existing credential (registry_credential_id) or let goldgate manage one from "
                        "goldgate:registryUsername/goldgate:registryPassword (manage_registry_credential), not both")
    if spec.workers_min > spec.workers_max:
        raise SpecError(f"{f.source}: {f.where}: workers_min ({spec.workers_min}) exceeds workers_max "
                        f"({spec.workers_max})")
    least_ttl = spec.execution_timeout_ms + MIN_QUEUE_WAIT_MS
    if spec.ttl_ms < least_ttl:
        raise f._err("ttl_ms", f"{spec.ttl_ms} leaves less than {MIN_QUEUE_WAIT_MS // 60_000} minutes beyond "
                               f"execution_timeout_ms ({spec.execution_timeout_ms}) for a job to wait in RunPod's "
                               "queue, and RunPod deletes a job whose ttl runs out, queued or running, before it "
                               f"can time out: set ttl_ms to at least {least_ttl}")
    return spec


def _prices(f: _Fields, ep: EndpointSpec) -> Mapping[str, float]:
    """prices_per_gpu_second: USD per second for endpoint.cost_gpu_type, the one card costs are estimated for. A price
    under any other name would never be read, so a misspelt card name is refused rather than leave the estimates on
    the vendor table unseen."""
    raw = f._get("prices_per_gpu_second", False) or {}
    if not isinstance(raw, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1 for v in raw.values()):
        raise f._err("prices_per_gpu_second", "expected a mapping of GPU type to USD per second (0 < price < 1)")
    other = [k for k in raw if k != ep.cost_gpu_type]
    if other:
        raise f._err("prices_per_gpu_second", f"{show(other[0])} is not endpoint.cost_gpu_type "
                                              f"({show(ep.cost_gpu_type)}), the only GPU type whose price is used: "
                                              "name that type exactly, or set cost_gpu_type to the card you price")
    return raw


def _faults(f: _Fields) -> Faults:
    out = Faults(
        duplicate_deliveries=f.num("duplicate_deliveries", 1, 1, 10, integer=True),
        reorder=f.bool("reorder", False),
        reorder_window_s=f.num("reorder_window_s", 1.0, 0, 600),
        drop_first_delivery_rate=f.num("drop_first_delivery_rate", 0.0, 0, 1),
        drop_all_deliveries_rate=f.num("drop_all_deliveries_rate", 0.0, 0, 1),
        delivery_delay_s=f.num("delivery_delay_s", 0.0, 0, 600),
        delivery_delay_rate=f.num("delivery_delay_rate", 1.0, 0, 1),
        worker_crash_rate=f.num("worker_crash_rate", 0.0, 0, 1),
        crash_after_s=f.num("crash_after_s", 0.05, 0, 600),
        failed_rate=f.num("failed_rate", 0.0, 0, 1),
        cold_start_s=f.num("cold_start_s", 0.0, 0, 600),
        seed=f.num("seed", 0, 0, None, integer=True),
    )
    f.done()
    return out


def from_mapping(name: str, raw: Any, target: str, source: str) -> StackSpec:
    """Validate one stack's mapping (a `stacks/local.yaml` entry or Pulumi's `goldgate:spec`)."""
    if not _NAME.fullmatch(name or ""):
        raise SpecError(f"{source}: stack name {name!r} must be lowercase letters, digits and dashes")
    if name == "all":  # `goldgate up all` and `down all` mean every stack: a stack of that name could not be named
        raise SpecError(f"{source}: a stack cannot be named 'all' (`goldgate up all` and `down all` mean every stack); "
                        "give it another name")
    f = _Fields(raw, f"stacks.{name}" if target == "local" else "goldgate:spec", source)
    role = f.str("role", required=True, choices=ROLES)
    if name in ROLES and role != name:  # the release commands, guardrails and protections all go by the role
        raise f._err("role", f"{role!r} contradicts the stack's name {name!r}: a stack named {name} must have role "
                             f"{name}; fix the role, or give a {role} stack a name other than staging or prod")
    image = f.str("image")
    if image is not None and not is_digest_ref(image):
        raise f._err("image", f"{show(image)} is not pinned by digest: use repo@sha256:<64 hex> "
                              "(a tag can be re-pointed; RunPod may keep serving a cached image for it)")
    ep = _endpoint(f.sub("endpoint", required=True), name)
    st = f.sub("storage", required=True)
    bucket = f"{st.str('bucket', required=True, pattern=_BUCKET_NAME, rule=_BUCKET_RULE)}"
    storage = StorageSpec(bucket=bucket,
                          location=st.str("location", choices=LOCATION_HINTS, rule="an R2 location hint"),
                          jurisdiction=st.str("jurisdiction", default="default", choices=("default", "eu", "fedramp")),
                          result_ttl_days=st.num("result_ttl_days", 30, 1, 3650, integer=True),
                          backup_retention_days=_backup_retention_days(st), backup_bucket=_backup_bucket(st, bucket))
    st.done()
    db = f.sub("database", required=True)
    database = DatabaseSpec(name=db.str("name", required=True, pattern=_NAME),
                            location_hint=db.str("location_hint", choices=LOCATION_HINTS,
                                                 rule="a D1 location hint"),
                            protect=db.bool("protect", role == "prod"),
                            retention=_retention(db, storage.result_ttl_days))
    db.done()
    a = f.sub("api", required=True)
    api = ApiSpec(script_name=a.str("script_name", required=True, pattern=_WORKER_NAME, rule=_WORKER_RULE),
                  public_base_url=_public_base_url(a), route=_route(a),
                  zone_id=a.str("zone_id", pattern=_ZONE_ID, rule=_ZONE_RULE), custom_domain=_custom_domain(a),
                  keep_workers_dev=a.bool("keep_workers_dev", False),
                  # a job's inputs are one D1 row, which the service caps at 1,000,000 bytes (inputs_too_large)
                  max_body_bytes=a.num("max_body_bytes", 65_536, 1_024, 1_000_000, integer=True),
                  signed_url_ttl_s=a.num("signed_url_ttl_s", 3_600, 60, 604_800, integer=True),
                  max_jobs_in_flight=a.num("max_jobs_in_flight", 1_000, 1, MAX_JOBS_IN_FLIGHT, integer=True),
                  max_input_bytes=_max_input_bytes(a),
                  max_input_pixels=a.num("max_input_pixels", DEFAULT_INPUT_PIXELS, 1, None, integer=True),
                  compatibility_date=_compatibility_date(a), rate_limits=_rate_limits(a.sub("rate_limits")),
                  smart_placement=a.bool("smart_placement", True),
                  daily_spend_limit_usd=_daily_spend_limit(a),
                  client_daily_spend_limit_usd=_daily_spend_limit(a, "client_daily_spend_limit_usd"))
    a.done()
    t = f.sub("thresholds")
    thresholds = Thresholds(golden_mean_latency_s=t.num("golden_mean_latency_s", 360.0, 1, 86_400),
                            golden_case_latency_s=t.num("golden_case_latency_s", 600.0, 1, 86_400),
                            error_rate=t.num("error_rate", 0.05, 0, 1),
                            report_max_age_s=t.num("report_max_age_s", 86_400, 60, 30 * 86_400, integer=True))
    t.done()
    prices_raw = _prices(f, ep)
    local = cloud = None
    if target == "local":
        lf = f.sub("local")
        local = LocalSpec(webhook_retry_delay_s=lf.num("webhook_retry_delay_s", 10.0, 0, 600),
                          comfy_startup_s=lf.num("comfy_startup_s", 0.5, 0, 600),
                          rate_limit_per_10s=lf.num("rate_limit_per_10s", 1_000, 1, 1_000_000, integer=True),
                          result_retention_s=lf.num("result_retention_s", 1800.0, 1, 1800),
                          faults=_faults(lf.sub("faults")))
        lf.done()
    else:
        cf = f.sub("cloud", required=True)
        cloud = CloudSpec(cloudflare_account_id=cf.str("cloudflare_account_id", required=True,
                                                       pattern=re.compile(r"^[0-9a-f]{32}$|^<[A-Z_]+>$"),
                                                       rule="a Cloudflare account id (32 lowercase hex digits, the "
                                                            "dashboard's Account ID)"),
                          runpod_api_base=_base_url(cf, "runpod_api_base", "https://api.runpod.io"),
                          runpod_endpoint_base=_base_url(cf, "runpod_endpoint_base", "https://api.runpod.ai/v2"))
        cf.done()
    spec = StackSpec(name=name, role=role, target=target,
                     workflow_version=f.str("workflow_version", required=True, pattern=_VERSION),
                     endpoint=ep, storage=storage, database=database, api=api, thresholds=thresholds,
                     prices_per_gpu_second=dict(prices_raw), image=image, local=local, cloud=cloud)
    f.done()
    if spec.is_prod and spec.endpoint.network_volume_id:
        raise SpecError(f"{source}: stacks.{name}.endpoint.network_volume_id: PROD must not use a network "
                        "volume; models are baked into the image")
    if target == "local":
        _refuse_what_the_local_target_ignores(spec, f"{source}: stacks.{name}")
    if target == "local" and spec.endpoint.pulls_privately:
        raise SpecError(f"{source}: stacks.{name}.endpoint: registry_credential_id and manage_registry_credential are "
                        "for cloud stacks: the local target runs images from its own image store and pulls nothing")
    if target == "local" and spec.database.retention is not None:
        # The stack host runs it on this schedule: one its reading cannot place in time (`1,L`, Feb 31) is refused
        # here, not found by a host that would never prune. (Imported here: the host's module imports this one.)
        from goldgate.local.retention_cron import CronError, CronSchedule

        try:
            CronSchedule.parse(spec.database.retention.cron)
        except CronError as exc:
            raise SpecError(f"{source}: stacks.{name}.database.retention.cron: {exc}; {_CRON_RULE}") from None
    if target == "cloud" and spec.image is None:
        raise SpecError(f"{source}: goldgate:spec.image is required for a cloud stack (repo@sha256:<64 hex>)")
    return spec


def _refuse_what_the_local_target_ignores(spec: StackSpec, where: str) -> None:
    """Settings a local stack file may not carry because the local target would silently ignore them (or, for
    REQUEST_COUNT, run what the cloud refuses): the user would believe in a setting they do not have."""
    if spec.image is not None:
        raise SpecError(f"{where}.image: a local stack's image is pinned in its state dir, by `goldgate deploy` "
                        "(STAGING) and by `goldgate promote` / `goldgate rollback` (PROD), not by the stack file: "
                        "remove the line")
    if spec.endpoint.scaler_type == "REQUEST_COUNT":
        raise SpecError(f"{where}.endpoint.scaler_type: REQUEST_COUNT cannot be deployed to RunPod beside the idle "
                        "timeout every endpoint declares, so the local target does not run it either: use QUEUE_DELAY")
    if spec.endpoint.network_volume_id:
        raise SpecError(f"{where}.endpoint.network_volume_id: the local target mounts no volume; its workers read the "
                        "models baked into the image snapshot: remove the line")


# How many entries `<<` merge keys may copy in one file: nested merges multiply, so a few hundred bytes could
# otherwise expand to billions of entries.
MAX_MERGED_ENTRIES = 10_000


class _StackFileLoader(yaml.SafeLoader):
    """SafeLoader reading a file as Pulumi (YAML 1.2) does: a key given twice in one mapping is an error, and an
    unquoted date, yes/no/on/off and `1:30` stay text; `<<` merges work but may copy at most MAX_MERGED_ENTRIES
    entries in all."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._merged = 0
        self._checked: set[int] = set()

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (KeyError, AttributeError, IndexError, TypeError):
            # PyYAML's own constructors fail this way on a value an explicit tag cannot take (`!!bool maybe`,
            # `!!timestamp soon`, `!!int ""`): a YAML error at the value, not a crash.
            raise yaml.constructor.ConstructorError(
                None, None, f"{show(node.value)} is not a valid !!{node.tag.rsplit(':', 1)[-1]}",
                node.start_mark) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value: int = super().construct_yaml_int(node)
            str(value)  # one written in hex, octal or binary escapes Python's 4,300-digit limit on reading, not on
            # printing: every error quoting it, and every JSON it reaches, would fail with ValueError
        except ValueError:
            digits = len(re.sub(r"^[-+]?(?:0[xob])?|_", "", node.value))
            raise yaml.constructor.ConstructorError(
                None, None, f"{show(node.value)} is an integer of {digits} digits; no setting takes one that large",
                node.start_mark) from None
        return value

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        if id(node) not in self._checked:  # once per node, before merged entries join its own
            self._checked.add(id(node))
            seen: dict[tuple[str, str], yaml.Node] = {}
            for key, _ in node.value:
                if key.tag == "tag:yaml.org,2002:merge" or not isinstance(key, yaml.ScalarNode):
                    continue
                first = seen.setdefault((key.tag, key.value), key)
                if first is not key:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {show(key.value)} (first given at line {first.start_mark.line + 1})",
                        key.start_mark)
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                for source in value.value if isinstance(value, yaml.SequenceNode) else [value]:
                    if isinstance(source, yaml.MappingNode):
                        self.flatten_mapping(source)
                        self._merged += len(source.value)
                    if self._merged > MAX_MERGED_ENTRIES:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"merge keys (<<) expand to more than {MAX_MERGED_ENTRIES:,} entries",
                            key.start_mark)
        super().flatten_mapping(node)


# YAML 1.1 forms a YAML 1.2 reader (Pulumi) takes as text: yes/no/on/off are not booleans, and `1:30` is not the
# base-60 number 90. PyYAML's own patterns, without those.
_YAML12_PATTERNS = {
    "tag:yaml.org,2002:bool": re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    "tag:yaml.org,2002:int": re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                                        r"|[-+]?0x[0-9a-fA-F_]+)$"),
    # YAML 1.2's floats: the exponent's sign is optional and no dot is needed with one (`5e-2`, `1e3`), where
    # PyYAML read them as text and a number Pulumi takes was refused as "expected a number, got '5e-2'".
    "tag:yaml.org,2002:float": re.compile(r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
                                          r"|[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
                                          r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
                                          r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
}
_StackFileLoader.add_constructor("tag:yaml.org,2002:int", _StackFileLoader.construct_yaml_int)
_StackFileLoader.yaml_implicit_resolvers = {
    first: [(tag, _YAML12_PATTERNS.get(tag, regexp)) for tag, regexp in resolvers
            if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def is_stack_name(name: str) -> bool:
    """Whether `name` follows the stack-name rule (one plain directory name under a home's stacks/)."""
    return bool(_NAME.fullmatch(name))


def _open_regular_file(path: Path, what: str, error: type[GoldgateError]) -> BinaryIO:
    """`path` opened for reading if it is a regular file: a named pipe in place of a stack file blocked the command
    forever, waiting for a writer that never comes."""
    try:
        return os.fdopen(open_regular(path, os.O_RDONLY), "rb")
    except NotARegularFile as exc:
        raise error(f"{what} {path} is {exc.kind}, not a file; name the {what} itself, saved as a file") from None


@functools.lru_cache(maxsize=32)
def _parsed(text: str) -> Any:
    """The document in `text`, parsed once per process: the stacks file is read again for each stack a command
    names (`goldgate status`, a deploy's wait for its rollout, about 6.5 ms each with PyYAML's Python parser).
    Keyed on the text itself, so an edited file is parsed anew; callers get a copy (read_yaml). A text that
    fails to parse raises each time (lru_cache keeps no exception)."""
    return yaml.load(text, Loader=_StackFileLoader)  # a SafeLoader: no Python tags


def read_yaml(path: Path, what: str = "stack file", max_bytes: int = 1_000_000,
              error: type[GoldgateError] = SpecError) -> Any:
    """A small YAML file an operator edits (a stack file, a golden case), parsed; anything wrong with it, from a
    missing file to a 5,000-digit number or nesting too deep to parse, is one `error` naming `what` and `path`."""
    try:
        with _open_regular_file(path, what, error) as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            size = f"{max_bytes / 1e6:g} MB" if max_bytes >= 1_000_000 else f"{max_bytes // 1000} kB"
            raise error(f"{what} {path} is larger than {size}; is it the right file?")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                    "save it as UTF-8") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return copy.deepcopy(_parsed(text))   # a caller may change what it gets: never the cached document
    except yaml.reader.ReaderError as exc:  # PyYAML names only an offset "in <unicode string>": say line and column
        line_start = text.rfind("\n", 0, exc.position) + 1
        raise error(f"{what} {path} is not valid YAML: unacceptable character #x{exc.character:04x} at line "
                    f"{text.count(chr(10), 0, exc.position) + 1}, column {exc.position - line_start + 1} (a control "
                    "character, which YAML does not allow); remove it") from None
    except yaml.MarkedYAMLError as exc:  # on one line: where, and what the parser expected there
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{what} {path} is not valid YAML{where}: {(exc.problem or exc.context or '')[:300]}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: e.g. a 5,000-digit number
        reason = ("nested too deeply" if isinstance(exc, RecursionError)
                  else " ".join(str(exc).split(";")[0].split())[:500])  # not Python's advice on raising its limit
        raise error(f"{what} {path} is not valid YAML: {reason or type(exc).__name__}") from None


def load_local(name: str, path: Path = LOCAL_STACKS_FILE) -> StackSpec:
    """One local stack from `stacks/local.yaml`."""
    stacks = local_stack_names(path, _raw=True)
    if name not in stacks:
        known = [k if isinstance(k, str) and _NAME.fullmatch(k) else show(k) for k in sorted(stacks, key=str)]
        listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        raise SpecError(f"{path}: no stack named {show(name)} (stacks: {listed or 'none'})")
    return from_mapping(name, stacks[name], "local", str(path))


def local_stack_names(path: Path = LOCAL_STACKS_FILE, _raw: bool = False) -> Any:
    doc = read_yaml(path)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("stacks"), Mapping):
        raise SpecError(f"{path}: expected a top-level `stacks:` mapping of stack name to settings")
    return doc["stacks"] if _raw else sorted(doc["stacks"], key=str)


def load_pulumi(name: str, directory: Path = STACKS_DIR) -> StackSpec:
    """A cloud stack from `stacks/Pulumi.<name>.yaml` (key `goldgate:spec`)."""
    if not _NAME.fullmatch(name):  # before it is a path: `../prod` named "stacks/Pulumi.../prod.yaml" as missing
        raise SpecError(f"{show(name)} is not a stack name (2-41 lowercase letters, digits and dashes, first a letter: "
                        f"staging or prod); a cloud stack is {directory}/Pulumi.<stack>.yaml")
    path = directory / f"Pulumi.{name}.yaml"
    doc = read_yaml(path)
    config = doc.get("config") if isinstance(doc, Mapping) else None
    if isinstance(config, Mapping):
        refuse_unknown_config_keys(config, path, name)
    if not isinstance(config, Mapping) or "goldgate:spec" not in config:
        raise SpecError(f"{path}: expected `config: goldgate:spec: {{...}}`")
    # By the name each key is read under: `goldgate:config:apiToken` and a bare `apiToken` are goldgate:apiToken.
    exposed = {_our_config_key(key) for key, value in config.items() if _in_plain_text(value)}
    plain = [key for key in SECRET_CONFIG_KEYS if key in exposed]
    if plain:  # never the value: it is a credential, and now it is in a file that is committed
        # a client's token is one leaf of goldgate:clientTokens: set without --path, it would replace every client
        target = f"--path 'goldgate:{plain[0]}.<name>'" if plain[0] == CLIENT_TOKENS_KEY else f"goldgate:{plain[0]}"
        raise SpecError(f"{path}: {', '.join('goldgate:' + k for k in plain)} "
                        f"{'is' if len(plain) == 1 else 'are'} stored in plain text in the stack file, which is "
                        f"committed: set {'it' if len(plain) == 1 else 'each'} again with `pulumi config set --secret "
                        f"{target} --stack {name}` (which encrypts it) and rotate it if the file was shared or "
                        "pushed")
    return from_mapping(name, config["goldgate:spec"], "cloud", str(path))


# Every `goldgate:` key of a stack file, named once: the Pulumi program (infra/program.py, read_config) reads each under
# these names, and load_pulumi refuses any other. A test holds them to what the program reads
# (tests/infra/test_review28_inputfix_config_keys_read.py).
# The credentials every cloud stack sets, by the program's name for each; each belongs in the stack file only as
# `secure: <ciphertext>`, as `pulumi config set --secret` writes it.
STACK_SECRET_KEYS = {"runpod_api_key": "runpodApiKey", "webhook_secret": "webhookSecret", "api_token": "apiToken",
                     "cloudflare_api_token": "cloudflareApiToken"}
# Only with goldgate:spec.endpoint.manage_registry_credential: the private registry's login.
REGISTRY_SECRET_KEYS = {"registry_username": "registryUsername", "registry_password": "registryPassword"}
# Only while the webhook secret is rotated (docs/RUNBOOK.md): the one before it.
PREVIOUS_WEBHOOK_SECRET_KEY = "webhookSecretPrevious"
# Only while the API token is rotated (docs/RUNBOOK.md): the one before it, which clients may still send.
PREVIOUS_API_TOKEN_KEY = "apiTokenPrevious"
# The named clients' tokens (service/clients.py): an object of client name -> token, each leaf encrypted, set with
# `pulumi config set --secret --path 'goldgate:clientTokens.<name>'` (docs/RUNBOOK.md, "Add or revoke a client").
CLIENT_TOKENS_KEY = "clientTokens"
# What each secret is set from (docs/CLOUD.md, "Configure a stack", step 3): a credential the operator holds is piped
# in from a variable, so it stays off the command line and out of the shell history; the two keys the API checks
# are made fresh.
_SECRET_SOURCES = {"runpodApiKey": 'printf %s "$RUNPOD_API_KEY"',
                   "cloudflareApiToken": 'printf %s "$CLOUDFLARE_API_TOKEN"',
                   "webhookSecret": "openssl rand -hex 32", "apiToken": "openssl rand -hex 32",
                   "registryUsername": 'printf %s "$REGISTRY_USER"',
                   "registryPassword": 'printf %s "$REGISTRY_PASSWORD"'}
SECRET_CONFIG_KEYS = (*STACK_SECRET_KEYS.values(), *REGISTRY_SECRET_KEYS.values(), PREVIOUS_WEBHOOK_SECRET_KEY,
                      PREVIOUS_API_TOKEN_KEY, CLIENT_TOKENS_KEY)
# The other keys: the StackSpec, and the Pulumi program's plain settings.
SPEC_CONFIG_KEY = "spec"
CLOUDFLARE_API_BASE_CONFIG_KEY = "cloudflareApiBase"
R2_WRITE_GROUP_CONFIG_KEY = "r2WritePermissionGroupId"
R2_READ_GROUP_CONFIG_KEY = "r2ReadPermissionGroupId"
SETTING_CONFIG_KEYS = (SPEC_CONFIG_KEY, CLOUDFLARE_API_BASE_CONFIG_KEY, R2_WRITE_GROUP_CONFIG_KEY,
                       R2_READ_GROUP_CONFIG_KEY)
CONFIG_KEYS = SETTING_CONFIG_KEYS + SECRET_CONFIG_KEYS
CONFIG_NAMESPACE = "goldgate"  # Pulumi.yaml's project name: a key given without a namespace is in it too
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,80}")


def set_secret_command(key: str, stack: str) -> str:
    """The whole command that stores the secret `key` (a name under `goldgate:`) encrypted in stack `stack`'s file."""
    source = _SECRET_SOURCES.get(key, 'printf %s "$VALUE"')
    return f"{source} | pulumi config set --secret {CONFIG_NAMESPACE}:{key} --stack {stack}"


def _our_config_key(key: Any) -> str | None:
    """The name under `goldgate:` of a stack file's config key (`goldgate:<name>`, Pulumi's long form
    `goldgate:config:<name>`, or a bare `<name>`, which Pulumi puts in the project's namespace), or None for a key
    of another namespace (`runpod:`, `cloudflare:`, `aws:`: a provider's, not goldgate's to judge)."""
    if not isinstance(key, str):
        return None
    namespace, colon, name = key.partition(":")
    if not colon:
        return key
    if namespace != CONFIG_NAMESPACE:
        return None
    return name.removeprefix("config:")


def _nearest_config_key(name: str) -> str | None:
    """The known key `name` was most likely meant to be (case aside: `ApiToken` is `apiToken`), or None."""
    lowered = {known.lower(): known for known in CONFIG_KEYS}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[found[0]] if found else None


def refuse_unknown_config_keys(config: Mapping[Any, Any], path: Path | str, stack: str) -> None:
    """Refuse a `goldgate:` key nothing reads (a typo, a leftover), naming it and the key it is nearest to. Its value
    is never shown: under a mistyped name a credential sits in the committed file in plain text, unread, which the
    plain-text check of SECRET_CONFIG_KEYS (by their exact names) does not see."""
    unknown = [key for key in config if _our_config_key(key) not in (None, *CONFIG_KEYS)]
    if not unknown:
        return
    named, exposed, unmatched = [], [], False
    for key in unknown:
        shown = key if _PLAIN_KEY.fullmatch(key) else show(key)  # as the file spells it; bounded, if odd
        nearest = _nearest_config_key(_our_config_key(key) or "")
        unmatched = unmatched or nearest is None
        named.append(shown + (f" (did you mean {CONFIG_NAMESPACE}:{nearest}?)" if nearest else ""))
        value = config[key]
        if nearest not in SETTING_CONFIG_KEYS and isinstance(value, str) and value.strip():  # perhaps a credential
            exposed.append(shown)
    one = len(unknown) == 1
    listed = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
    raise SpecError(
        f"{path}: {listed} {'is not a key' if one else 'are not keys'} of goldgate's stack config: nothing reads "
        f"{'it' if one else 'them'}"
        + (f" (goldgate's keys: {', '.join(CONFIG_KEYS)})" if unmatched else "")
        + f". Rename or remove {'it' if one else 'each'} (`pulumi config rm <key> --stack {stack}`, then `pulumi "
        f"config set [--secret] {CONFIG_NAMESPACE}:<key> --stack {stack}`)"
        + (f"; {', '.join(exposed[:5])} {'holds' if len(exposed) == 1 else 'hold'} a value in plain text: if it is a "
           "credential, it is in a file that is committed, so rotate it if the file was shared or pushed"
           if exposed else ""))


def _in_plain_text(value: Any) -> bool:
    """A config value given as itself rather than `{secure: <ciphertext>}`; an empty one holds nothing to leak."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return False
    if isinstance(value, Mapping) and list(value) != ["secure"]:
        # an object set with `--path` (goldgate:clientTokens): plain text where any of its leaves is; `{}` is what
        # `pulumi config rm --path` leaves once its last leaf is removed
        return any(_in_plain_text(leaf) for leaf in value.values())
    return not (isinstance(value, Mapping) and list(value) == ["secure"] and isinstance(value["secure"], str))


def from_pulumi_config(name: str, spec_object: Any) -> StackSpec:
    """The StackSpec inside a running Pulumi program (`pulumi.Config('goldgate').require_object('spec')`)."""
    return from_mapping(name, spec_object, "cloud", f"Pulumi config of stack {name}")
