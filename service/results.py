"""Result objects: which keys may be served, and checking what a worker reported against the store."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from service.http import MAX_JSON_DEPTH, ApiError, nested_deeper_than
from service.ports import ObjectTooLarge, ResultStore

ALLOWED_CONTENT_TYPES = ("image/png", "image/jpeg", "image/webp")
# Each reported image is one store HEAD while the webhook is answered (a Worker invocation's calls to
# Cloudflare services, D1's too, are limited: 1,000 on the paid plan) and about 330 bytes of the job's row
# (D1 refuses a row over 2,000,000 bytes). Past either, every delivery fails alike: RunPod retries twice and
# gives up, and the job never settles.
MAX_IMAGES = 500
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_MAX_DIMENSION = 2**31 - 1  # PNG's own limit; larger is no pixel count
_JOB_ID = r"[0-9a-f]{32}"
# \Z, not $: $ also matches before a final newline, which would make "0.png\n" a second name for "0.png"
_KEY = re.compile(rf"^results/({_JOB_ID})/([A-Za-z0-9_-][A-Za-z0-9._-]{{0,127}})\Z")
# The worker stores the output it returns here, next to the job's images (docs/INTERFACES.md, "Worker output"):
# a recovery reads it once RunPod has forgotten the job. It is no result image, so GET /api/result never serves it.
OUTCOME_FILE = "outcome.json"
# A worker's output is at most MAX_IMAGES image entries (about 330 bytes each) and 16 KB of timings.
MAX_OUTCOME_BYTES = 1_048_576


def image_type(content_type: str | None) -> str | None:
    """The allowed image type a stored Content-Type names (its parameters and case aside), or None."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media if media in ALLOWED_CONTENT_TYPES else None


# Every result object lives under it: the cloud bucket's lifecycle rule (infra) and the local store's expiry
# (goldgate.local.object_store) expire exactly these keys.
RESULTS_PREFIX = "results/"


def result_prefix(job_id: str) -> str:
    return f"{RESULTS_PREFIX}{job_id}/"


def parse_result_key(raw_path_tail: str) -> str:
    """The object key from the encoded path after /api/result/, or 404 for anything that is not a
    plain result key: no '..', no absolute or backslash paths, no (double) percent-encoding tricks."""
    key = unquote(raw_path_tail)
    if "%" in key or not _KEY.match(key) or ".." in key or key.endswith(f"/{OUTCOME_FILE}"):
        raise ApiError(404, "not_found", "no such result; keys look like results/<job_id>/<file>")
    return key


def key_job_id(key: str) -> str:
    match = _KEY.match(key)
    assert match, key
    return match.group(1)


@dataclass(frozen=True)
class ResultImage:
    key: str
    content_type: str
    bytes: int
    sha256: str | None
    width: int | None
    height: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "content_type": self.content_type, "bytes": self.bytes,
                "sha256": self.sha256, "width": self.width, "height": self.height}


class ResultRejected(Exception):
    """The worker's output does not match the store; the message is the job's failure reason."""


def parse_images(job_id: str, output: Any) -> list[ResultImage]:
    """The images a COMPLETED output reports, or ResultRejected saying what is wrong with it."""
    if not isinstance(output, dict):
        raise ResultRejected("worker output is not a JSON object with 'images'")
    images = output.get("images")
    if not isinstance(images, list) or not images:
        raise ResultRejected("worker output reports no images")
    if len(images) > MAX_IMAGES:
        raise ResultRejected(f"worker output reports {len(images)} images; a job may report at most {MAX_IMAGES}")
    parsed: list[ResultImage] = []
    prefix = result_prefix(job_id)
    for i, item in enumerate(images):
        where = f"worker output images[{i}]"
        if not isinstance(item, dict):
            raise ResultRejected(f"{where} is not an object")
        key, ctype, size = item.get("key"), item.get("content_type"), item.get("bytes")
        if not isinstance(key, str) or not _KEY.match(key) or not key.startswith(prefix):
            raise ResultRejected(f"{where}.key {str(key)[:200]!r} is not a result key under {prefix}")
        if not isinstance(ctype, str):
            raise ResultRejected(f"{where}.content_type is missing")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ResultRejected(f"{where}.bytes must be a non-negative integer")
        sha, width, height = item.get("sha256"), item.get("width"), item.get("height")
        parsed.append(ResultImage(key, ctype, size, sha if isinstance(sha, str) and _SHA256.fullmatch(sha) else None,
                                  _dimension(width), _dimension(height)))
    return parsed


def _dimension(value: Any) -> int | None:
    """A reported width or height, or None when it is no pixel count (what is stored stays small)."""
    return value if value.__class__ is int and 0 < value <= _MAX_DIMENSION else None


async def verify_images(store: ResultStore, images: list[ResultImage]) -> None:
    """Each reported object exists with the reported size and an allowed image Content-Type.

    Raises ResultRejected (the job fails with that reason); StoreUnavailable propagates (retry later).
    """
    for image in images:
        meta = await store.head(image.key)
        if meta is None:
            raise ResultRejected(f"result object {image.key} is missing from the result store")
        if meta.size != image.bytes:
            raise ResultRejected(f"result object {image.key} has {meta.size} bytes in the store but the "
                                 f"worker reported {image.bytes}")
        stored_type = image_type(meta.content_type)
        if stored_type is None:
            raise ResultRejected(f"result object {image.key} has Content-Type {meta.content_type!r}; "
                                 f"allowed: {', '.join(ALLOWED_CONTENT_TYPES)}")
        if stored_type != image.content_type.lower():
            raise ResultRejected(f"result object {image.key} is stored as {stored_type} but the worker "
                                 f"reported {image.content_type[:100]}")


class OutcomeUnusable(Exception):
    """The worker's stored outcome cannot be applied; the message says what is wrong with it."""


@dataclass(frozen=True)
class StoredOutcome:
    """What the worker returned for a job (`output`), and the RunPod job it ran as."""

    runpod_job_id: str
    output: dict[str, Any]


def outcome_key(job_id: str) -> str:
    return f"{result_prefix(job_id)}{OUTCOME_FILE}"


async def stored_outcome(store: ResultStore, job_id: str) -> StoredOutcome | None:
    """The outcome the worker stored for `job_id`, None when there is none; OutcomeUnusable when it is over
    MAX_OUTCOME_BYTES, not the worker's JSON, or reports images that are not this job's. StoreUnavailable
    propagates (retry later)."""
    key = outcome_key(job_id)
    try:
        raw = await store.read_at_most(key, MAX_OUTCOME_BYTES)
    except ObjectTooLarge:
        raise OutcomeUnusable(f"{key} is over {MAX_OUTCOME_BYTES} bytes") from None
    if raw is None:
        return None
    try:
        if nested_deeper_than(raw, MAX_JSON_DEPTH):  # Pyodide's parser would overflow the Worker's JS stack
            raise RecursionError
        document = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError too; nested past the parser's depth is no outcome
        raise OutcomeUnusable(f"{key} is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("output"), dict):
        raise OutcomeUnusable(f"{key} is not a worker outcome (a JSON object with 'runpod_job_id' and 'output')")
    rid = document.get("runpod_job_id")
    if not isinstance(rid, str) or not rid or len(rid) > 128:
        raise OutcomeUnusable(f"{key} names no RunPod job")
    try:
        parse_images(job_id, document["output"])
    except ResultRejected as exc:
        raise OutcomeUnusable(f"{key}: {exc}") from None
    return StoredOutcome(rid, document["output"])
