"""A job's recovery deadline is its own: from the policy.ttl it was sent with and the /run timeout then in force,
recorded when it was created. Lowering the stack's ttl while jobs are at RunPod must not have a recovery record one
of them failed while RunPod may still run it. Rows written before migration 0005 recorded neither: their deadline
uses the service's current config. Real SQLite, moto S3, a fake RunPod data plane."""

from __future__ import annotations

import dataclasses

from test_recover_expired_ttl import _named_time, _never_sent
from test_recover_unrecorded_runpod_id import _recover, _unrecorded

SENT_TTL_MS = 86_400_000  # the ttl the job is sent with (make_config's default)
LOWERED_TTL_MS = 3_600_000  # the stack's ttl after a StackSpec change, while the job is at RunPod
UNKNOWN_ID = "0f0f0f0f-aaaa-bbbb-cccc-00000000dead-u1"  # an id RunPod does not know (mistyped)


def _lower_the_ttl(svc) -> None:
    assert svc.app.config.ttl_ms == SENT_TTL_MS
    svc.app.config = dataclasses.replace(svc.app.config, ttl_ms=LOWERED_TTL_MS)


def _unchanged(svc, job_id: str) -> None:
    assert svc.job(job_id)["status"] == "queued"
    assert svc.rows("SELECT * FROM webhook_deliveries WHERE job_id = ?", (job_id,)) == []
    assert svc.rows("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,)) == []


def test_a_job_sent_before_the_ttl_was_lowered_is_not_recorded_failed_before_its_own_deadline(svc, log_lines):
    job_id, _ = _unrecorded(svc, log_lines)  # RunPod took it (24 h ttl); its id and webhook were lost
    created = svc.clock[0]
    assert svc.fake.runs[-1]["policy"]["ttl"] == SENT_TTL_MS
    _lower_the_ttl(svc)
    svc.clock[0] = created + 3 * 3600  # past the lowered ttl's deadline: RunPod may still run the job
    status, body, _ = _recover(svc, job_id)
    assert status == 409 and body["error"]["code"] == "not_submitted", body
    when = _named_time(body["error"]["message"])
    assert when > created + SENT_TTL_MS / 1000  # the job's own deadline, not the lowered one
    # a mistyped id RunPod does not know fails nothing before that deadline either
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": UNKNOWN_ID})
    assert status == 409 and body["error"]["code"] == "unknown_runpod_job", body
    assert _named_time(body["error"]["message"]) == when
    _unchanged(svc, job_id)
    svc.clock[0] = when
    status, body, _ = _recover(svc, job_id)
    assert (status, body["applied"], body["status"]) == (200, True, "failed"), body
    assert f"{SENT_TTL_MS} ms (policy.ttl)" in svc.job(job_id)["error"]  # the ttl RunPod was told


def test_a_job_recorded_before_migration_0005_takes_its_deadline_from_the_current_config(svc, log_lines):
    old = _never_sent(svc)  # its row records no ttl, as every row written before the migration
    new, _ = _unrecorded(svc, log_lines)
    assert (svc.job(old)["policy_ttl_ms"], svc.job(new)["policy_ttl_ms"]) == (None, SENT_TTL_MS)
    created = svc.clock[0]
    _lower_the_ttl(svc)
    svc.clock[0] = created + 3 * 3600
    status, body, _ = _recover(svc, old)
    assert (status, body["applied"], body["status"]) == (200, True, "failed"), body
    assert f"{LOWERED_TTL_MS} ms (policy.ttl)" in svc.job(old)["error"]
    status, body, _ = _recover(svc, new)
    assert status == 409 and body["error"]["code"] == "not_submitted", body
    _unchanged(svc, new)
