"""Idempotency-Key on POST /api/queue/create: a client whose create timed out retries with the same key
and gets the same job back, not a second job (and a second RunPod bill).

The same key with the same body within `WINDOW_S` answers the job it created (202, header
`Idempotent-Replayed: true`); with another body it is a 422 `idempotency_key_reused`; a malformed key is a
400. Keys are per scope: the stack for its API token, and the stack and client for each named client's token
(routes.idempotency_scope), so two clients' keys never meet. The key row and its job are written
in one D1 batch, the job only if the key row names it, so two concurrent duplicates make one job: the
primary key decides which (D1 has no interactive transactions). A submission RunPod never took releases
its key, so a retry with that key submits again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from service import jobs
from service.http import ApiError
from service.ports import Database, Statement

WINDOW_S = 24 * 3600  # as Stripe keeps keys: a retry comes within minutes; a day later it is a new request
MAX_KEY_CHARS = 255
# Visible ASCII without quote and backslash (a UUID, a ULID, a Stripe-style key), optionally sent as an
# RFC 8941 string in double quotes as the IETF draft "The Idempotency-Key HTTP Header Field" writes it.
_KEY_CHARS = r"[!#-\[\]-~]{1," + str(MAX_KEY_CHARS) + "}"
_KEY = re.compile(f'^(?:"({_KEY_CHARS})"|({_KEY_CHARS}))\\Z')

_CLAIM = ("INSERT INTO idempotency_keys (scope, idempotency_key, request_sha256, job_id, created_at, created_at_ms) "
          "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, idempotency_key) DO UPDATE SET "
          "request_sha256 = excluded.request_sha256, job_id = excluded.job_id, created_at = excluded.created_at, "
          "created_at_ms = excluded.created_at_ms WHERE idempotency_keys.created_at_ms <= ?")
_HOLDER = ("SELECT k.request_sha256, k.job_id, j.status, j.trace_id, j.workflow_version, j.worker_image_tag "
           "FROM idempotency_keys k "
           "LEFT JOIN jobs j ON j.id = k.job_id WHERE k.scope = ? AND k.idempotency_key = ?")
_ATTEMPTS = 3  # a holder can vanish between our claim and our read (its submission failed): claim again
# Last in the batch: the key row this request claimed is removed again when its job was not written (the stack's
# cap on jobs in flight refused it), in the same transaction, so no other request ever sees a key naming no job.
_UNCLAIM = ("DELETE FROM idempotency_keys WHERE scope = ? AND idempotency_key = ? AND job_id = ? "
            "AND NOT EXISTS (SELECT 1 FROM jobs WHERE id = ?)")


@dataclass(frozen=True)
class IdempotencyKey:
    scope: str
    key: str
    request_sha256: str


@dataclass(frozen=True)
class Holder:
    """The job an earlier request with the same key created."""

    job_id: str
    status: str | None
    trace_id: str | None
    workflow_version: str | None = None
    worker_image_tag: str | None = None


def parse(header: str | None, scope: str, body: Any) -> IdempotencyKey | None:
    """The request's key (None without the header), or a 400 naming what is wrong with it."""
    if header is None:
        return None
    match = _KEY.match(header.strip(" \t"))
    if match is None:
        raise ApiError(400, "invalid_idempotency_key", f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible "
                                                       "ASCII characters without quotes or backslashes (e.g. a UUID), "
                                                       f"got {header[:64]!r}",
                       field="Idempotency-Key")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return IdempotencyKey(scope, match.group(1) or match.group(2), hashlib.sha256(canonical.encode("utf-8")).hexdigest())


async def insert_job(db: Database, key: IdempotencyKey, job: jobs.NewJob) -> Holder | None:
    """Write the job under its key: None when this request now holds the key (the job is written), else
    the job that the same key and body created. A 422 if that job was created from another body; QueueFull
    (the key left free) when the stack's cap on jobs in flight refused the job."""
    now_ms = int(job.created_at_s * 1000)
    for _ in range(_ATTEMPTS):
        claim = Statement(_CLAIM, (key.scope, key.key, key.request_sha256, job.id, jobs.iso_ms(job.created_at_s),
                                   now_ms, now_ms - WINDOW_S * 1000))
        unclaim = Statement(_UNCLAIM, (key.scope, key.key, job.id, job.id))
        results = await db.batch([claim, jobs.insert_statement(job, held_by=(key.scope, key.key)), unclaim])
        if results[1].changes == 1:
            return None
        if results[2].changes == 1:  # the key was this request's, its job over the cap: nothing is left written
            raise jobs.QueueFull(job.max_in_flight or 0)
        rows = await db.query(_HOLDER, (key.scope, key.key))
        if not rows:
            continue
        if rows[0]["request_sha256"] != key.request_sha256:
            raise ApiError(422, "idempotency_key_reused", f"Idempotency-Key was already used for job "
                                                          f"{rows[0]['job_id']} with a different body; send a new "
                                                          "key for a new job", job_id=rows[0]["job_id"])
        return Holder(rows[0]["job_id"], rows[0]["status"], rows[0]["trace_id"], rows[0]["workflow_version"],
                      rows[0]["worker_image_tag"])
    raise ApiError(409, "idempotency_key_busy", "another request with this Idempotency-Key is being "
                                                "submitted and failed meanwhile; retry with the same key")


async def held(db: Database, key: IdempotencyKey, now_s: float) -> Holder | None:
    """The job the same key and body created within the window, read without claiming the key: what a create refused
    for something that has changed since the first one (its input image deleted after the retention period) answers
    instead, as that first create's replay would have."""
    rows = await db.query(_HOLDER + " AND k.created_at_ms > ?",
                          (key.scope, key.key, int(now_s * 1000) - WINDOW_S * 1000))
    if not rows or rows[0]["request_sha256"] != key.request_sha256 or rows[0]["status"] is None:
        return None
    return Holder(rows[0]["job_id"], rows[0]["status"], rows[0]["trace_id"], rows[0]["workflow_version"],
                  rows[0]["worker_image_tag"])


async def release(db: Database, key: IdempotencyKey, job_id: str) -> None:
    """Free the key of a job RunPod never took, so that a retry with it submits a new job."""
    await db.execute("DELETE FROM idempotency_keys WHERE scope = ? AND idempotency_key = ? AND job_id = ?",
                     (key.scope, key.key, job_id))
