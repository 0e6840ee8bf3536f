"""Review 14 (m4): the job facts the checklist judges, read from a real stack database."""

from __future__ import annotations

import sqlite3

from goldgate.ops.checklist_facts import read_job_facts


def _db(tmp_path, stack_db):
    path = stack_db(tmp_path / "db.sqlite", jobs=40, fail_every=10)
    facts = read_job_facts(path)
    assert facts.applied_webhooks.get("COMPLETED") and not facts.completed_without_delivery  # the premise
    assert not facts.bad_results and not facts.metrics_missing_cost
    return path


def _run(path, sql: str) -> str:
    conn = sqlite3.connect(path)
    with conn:
        job = conn.execute("SELECT id FROM jobs WHERE status = 'completed' ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute(sql, (job,))
    conn.close()
    return job


def test_completions_by_recovery_alone_are_no_applied_webhooks(tmp_path, stack_db):
    path = _db(tmp_path, stack_db)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE webhook_deliveries SET source = 'recover' WHERE runpod_status = 'COMPLETED'")
    conn.close()
    assert read_job_facts(path).applied_webhooks.get("COMPLETED", 0) == 0


def test_a_completed_job_whose_completed_delivery_was_not_applied_counts_as_undelivered(tmp_path, stack_db):
    path = _db(tmp_path, stack_db)
    _run(path, "UPDATE webhook_deliveries SET applied = 0 WHERE job_id = ? AND runpod_status = 'COMPLETED'")
    assert read_job_facts(path).completed_without_delivery == 1


def test_a_stored_result_of_zero_bytes_is_a_bad_result(tmp_path, stack_db):
    path = _db(tmp_path, stack_db)
    job = _run(path, "UPDATE jobs SET results_json = json_array(json_object('key', 'r/x.png', 'content_type', "
                     "'image/png', 'bytes', 0)) WHERE id = ?")
    assert any(line.startswith(f"{job}: r/x.png") for line in read_job_facts(path).bad_results)


def test_a_negative_cost_estimate_is_no_cost(tmp_path, stack_db):
    path = _db(tmp_path, stack_db)
    job = _run(path, "UPDATE job_metrics SET cost_estimate_usd = -0.01 WHERE job_id = ? "
                     "AND runpod_run_duration_ms IS NOT NULL")
    facts = read_job_facts(path)
    assert facts.metrics_missing_cost == 1 and job in facts.missing_cost_jobs


def test_a_job_never_logged_with_its_worker_image_tag_lacks_context(tmp_path):
    # "มี trace_id, workflow_version, worker_image_tag": all three, on some line of the job; two are not enough.
    from goldgate.logs import JsonLogger
    from goldgate.ops.checklist_facts import read_log_facts

    with (tmp_path / "service.jsonl").open("w") as fh:
        log = JsonLogger("service", fh, stack="staging", workflow_version="sdxl-txt2img@1.0.0")
        log.bind(job_id="job-1", trace_id="0" * 32).info("job.created", status="queued")
    facts = read_log_facts(tmp_path)
    assert facts.invalid_count == 0 and facts.job_ids == 1
    assert facts.jobs_without_context == ("job-1",)
