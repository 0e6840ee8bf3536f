"""The checklist's log-context line judges what the service logged about its jobs, not what an anonymous caller
claimed: a webhook with a wrong signature names the job its URL claims (so the operator can recover it after a
secret rotation), but the service does not read that job to log its trace, and must not have to."""

from __future__ import annotations

import json
from pathlib import Path

from goldgate.ops.checklist_facts import read_log_facts


def _logs_of(tmp_path: Path, lines: list[str]) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "service.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return logs


def test_a_forged_webhook_for_a_real_job_does_not_fail_the_trace_line_of_the_checklist(svc, log_lines, tmp_path):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    status, _, _ = svc.call("POST", "/api/runpod/webhook", {"id": "x", "status": "COMPLETED"}, token=None,
                            query=f"job={job['job_id']}&sig={'0' * 64}")
    assert status == 401
    forged = [json.loads(x) for x in log_lines if '"webhook.bad_signature"' in x]
    assert forged and forged[0]["job_id"] == job["job_id"]  # the operator still sees which job it claimed

    facts = read_log_facts(_logs_of(tmp_path, list(log_lines)))

    assert facts.invalid_count == 0
    assert facts.jobs_missing_trace == ()
    assert facts.jobs_without_context == ()
