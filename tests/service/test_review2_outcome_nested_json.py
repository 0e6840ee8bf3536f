"""A stored outcome nested past the JSON parser's depth (within the 1 MiB cap: anyone who can write the bucket can
put one there) is refused like any other unusable outcome. It used to escape as an internal error: every recovery
was a 500 and the job stayed queued for good. Real SQLite, moto S3, a fake RunPod data plane."""

from __future__ import annotations

from test_recover_from_store_outcome import _forgotten, _store_outcome
from test_recover_unrecorded_runpod_id import _recover


def test_an_outcome_nested_too_deep_to_parse_is_unusable_and_the_job_is_recorded_failed_saying_so(svc):
    job_id, _ = _forgotten(svc)
    _store_outcome(svc, job_id, None, raw=b"[" * 100_000 + b"]" * 100_000)

    status, body, _ = _recover(svc, job_id)

    assert (status, body.get("status")) == (200, "failed"), body
    error = svc.job(job_id)["error"]
    assert "outcome in the result store is unusable" in error and "outcome.json is not JSON" in error, error
