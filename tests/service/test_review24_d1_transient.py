"""D1's transient errors on the Worker. Cloudflare's "Debug D1" page lists three D1_ERRORs whose recommended action
is "Retry the operation": the Durable Object holding the database was reset because its code was updated, or failed
to start ("... storage caused object to be reset"), or the network to it was lost. D1 retries a read-only query
itself; a write it leaves to the caller. Before, each was a 500 `internal`, the answer a bug gets: a client had no
word to retry, and the line (`http.unhandled`) was the one an operator pages on for a bug. Now a 503
`database_busy` with `Retry-After: 5`, a `database.busy` line quoting D1's error, and /healthz says so until a
write is taken again."""

from __future__ import annotations

import pytest
from d1_transient_support import create_while_d1_throws, d1_entry, job_then_d1_throws
from test_review18_full_d1 import _lines

__all__ = ["d1_entry"]  # the `entry` fixture

TRANSIENT = ["D1_ERROR: D1 DB reset because its code was updated.",
             "D1_ERROR: Internal error while starting up D1 DB storage caused object to be reset.",
             "D1_ERROR: Network connection lost."]


@pytest.mark.parametrize("error", TRANSIENT)
def test_a_write_d1_says_to_retry_is_a_503_to_retry_shortly_and_healthz_says_so(entry, tmp_path, fake_runpod,
                                                                               capsys, log_lines, error):
    line, health, worker = create_while_d1_throws(entry, tmp_path, fake_runpod, capsys, log_lines, error)
    assert "transient" in line["message"], line
    assert "(database_busy)" in health["error"]["message"]
    assert worker.call("GET", "/healthz")[0] == 200  # D1 back: the health check clears
    _lines(capsys, log_lines)


@pytest.mark.parametrize("error, code", [(TRANSIENT[-1], "database_busy"),
                                         ("D1_ERROR: Exceeded maximum DB size", "storage_full")])
def test_a_webhook_d1_refuses_is_reported_by_healthz_too(entry, tmp_path, fake_runpod, capsys, log_lines, error,
                                                         code):
    """A webhook's outcome is written in one batch (as a create with an Idempotency-Key is): a refused batch was
    answered 503 but left /healthz at 200."""
    _, _, worker, job_id, runpod_id = job_then_d1_throws(entry, tmp_path, fake_runpod, error)
    status, body, _ = worker.deliver(job_id, {"id": runpod_id, "status": "FAILED", "error": "oom"})
    assert (status, body["error"]["code"]) == (503, code), body
    status, body, _ = worker.call("GET", "/healthz")
    assert (status, body["error"]["code"]) == (503, "database_unavailable"), body
    assert f"({code})" in body["error"]["message"], body
    _lines(capsys, log_lines)
