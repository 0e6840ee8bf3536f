"""Review 29 (mut): GET /api/status gives `cost_estimate_usd` as a JSON number with a fraction on both runtimes. D1
hands an integral REAL back as a JS number, which Pyodide makes a Python int: a job that cost $0 read `0` in the
cloud and `0.0` locally, and a client that types the field as a float refused the cloud's answer."""

from __future__ import annotations

import json

from service.jobs import status_view

JOB = {"id": "0" * 32, "status": "completed", "workflow_id": "wf", "workflow_version": "wf@1",
       "worker_image_tag": "local/worker@sha256:" + "a" * 64, "trace_id": "t" * 32, "runpod_job_id": "r-u1",
       "error": None, "created_at": "2026-11-28T10:00:00.000Z", "finished_at": "2026-11-28T10:00:01.000Z",
       "runpod_queue_duration_ms": 1, "runpod_run_duration_ms": 0, "e2e_ms": 1000, "worker_timings_json": None,
       "gpu_type": "NVIDIA L4"}


def test_an_integral_cost_read_back_from_d1_is_given_as_a_float() -> None:
    for stored, shown in ((0, "0.0"), (2, "2.0"), (0.25, "0.25"), (None, "null")):
        view = status_view({**JOB, "cost_estimate_usd": stored})
        assert json.dumps(view["cost_estimate_usd"]) == shown, (stored, view)
