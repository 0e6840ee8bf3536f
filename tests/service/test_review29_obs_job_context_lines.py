"""Lines about a job that do not carry the job's context (trace_id, the job's workflow_version), so a dashboard
filter on the job's trace_id misses them, are named in docs/LOG_EVENTS.md as such: a webhook whose signature fails
names the job its URL claims but not its trace, and a result download names its job only while the job's row is there
(test_review29_svc2_result_line.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

CATALOGUE = Path(__file__).resolve().parents[2] / "docs/LOG_EVENTS.md"


def _lines(log_lines, event: str) -> list[dict]:
    return [line for line in map(json.loads, log_lines) if line["event"] == event]


def _exceptions() -> str:
    """The catalogue's list of the lines about a job without the job's context."""
    text = CATALOGUE.read_text(encoding="utf-8")
    found = re.search(r"do not carry the job's context.*?\n\n", text, re.DOTALL)
    assert found, "LOG_EVENTS.md does not list the lines about a job that lack its trace_id"
    return found.group(0)


def test_the_lines_without_the_jobs_trace_are_the_ones_the_catalogue_names(svc, log_lines):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    assert svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))[0] == 200
    status, _, _ = svc.call("POST", "/api/runpod/webhook", {"id": "x", "status": "COMPLETED"}, token=None,
                            query=f"job={job['job_id']}&sig={'0' * 64}")
    assert status == 401
    assert svc.call("GET", f"/api/result/{image['key']}")[0] == 200

    (submitted,) = _lines(log_lines, "job.submitted")
    (forged,) = _lines(log_lines, "webhook.bad_signature")
    # the job the URL claims, without its trace: the job is not read for it
    assert submitted["trace_id"] == job["trace_id"]
    assert forged["job_id"] == job["job_id"] and forged["trace_id"] is None
    download = [line for line in _lines(log_lines, "http.request") if line["http"]["path"].startswith("/api/result/")]
    assert [(d["job_id"], d["trace_id"], d["http"]["path"]) for d in download] == [
        (job["job_id"], job["trace_id"], f"/api/result/{image['key']}")]

    listed = _exceptions()
    assert "`webhook.bad_signature`" in listed and "no `trace_id`" in listed
    assert "/api/result/<key>" in listed and "pruned job" in listed and "names none" in listed
