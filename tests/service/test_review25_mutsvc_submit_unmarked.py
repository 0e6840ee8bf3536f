"""RunPod failed a create's /run, and then the database refused to mark the job failed because it was locked
by another process (StorageBusy) or its file had been replaced (StorageGone), not full. The answer must still
be RunPod's own (no Retry-After while RunPod may have the job: the same request again would run and bill it
twice), naming why the job could not be marked. Only the full database's case was held by a test."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import pytest
from test_review18_full_database import CREATE
from test_review24_dbwrite_locked import svc

__all__ = ["svc"]


@pytest.mark.parametrize(("mode", "status", "code"), [
    ("refuse", 502, "runpod_refused"),
    ("error", 503, "runpod_unavailable"),  # RunPod may have the job: no Retry-After
])
def test_a_create_runpod_failed_on_a_locked_database_is_answered_as_runpods_failure(
        svc: Any, db_path, mode: str, status: int, code: str) -> None:
    lockers: list[sqlite3.Connection] = []

    def lock() -> None:  # the job row was written; another process takes the write lock before RunPod answers
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        lockers.append(other)

    svc.fake.run_mode = mode
    svc.fake.on_run = lock
    try:
        got, body, headers = svc.call("POST", "/api/queue/create", CREATE)
    finally:
        for other in lockers:
            other.execute("ROLLBACK")
            other.close()
    assert (got, body["error"]["code"]) == (status, code), body
    assert "retry-after" not in headers, headers
    message = body["error"]["message"]
    assert "could not be marked failed (the service's database is busy)" in message, message
    [job] = svc.rows("SELECT id, status FROM jobs")
    assert job["status"] == "queued" and body["error"]["job_id"] == job["id"]


def test_a_create_runpod_failed_after_the_database_file_was_replaced_is_answered_as_runpods_failure(
        svc: Any, db_path) -> None:
    svc.fake.run_mode = "error"
    svc.fake.on_run = lambda: os.unlink(db_path)
    got, body, headers = svc.call("POST", "/api/queue/create", CREATE)
    assert (got, body["error"]["code"]) == (503, "runpod_unavailable"), body
    assert "retry-after" not in headers, headers
    message = body["error"]["message"]
    assert "could not be marked failed (the service's database file was replaced)" in message, message
