"""Review 30 mutation audit (mut30): the checklist's `result_via_api` line judges a download on its content type
and its size as well as its sha256. A result served as another type, or cut short when its job recorded no sha256
(jobs from before the worker recorded one), fails the line; and a refusal whose JSON is no error object (a proxy's
`{"error": "bad gateway"}`) fails the line with the service's answer said to be unreadable, not a traceback."""

from __future__ import annotations

import json

import pytest
from ops_fixtures import build_stack_db, run_sql
from serving import serving
from test_review30_oncall_result_probe import IMAGE, TOKEN, _service

from goldgate.ops.checklist_facts import live_probe


def _db(tmp_path, sha256: str | None):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=3, fail_every=1000)
    result = {"key": "results/x/0.png", "content_type": "image/png", "bytes": len(IMAGE)}
    if sha256 is not None:
        result["sha256"] = sha256
    run_sql(db, f"UPDATE jobs SET results_json = '{json.dumps([result])}'")
    return db


def test_a_result_served_as_another_type_fails_the_line(tmp_path):
    import hashlib

    db = _db(tmp_path, hashlib.sha256(IMAGE).hexdigest())
    with serving(_service(200, IMAGE, "application/octet-stream")) as url:
        live = live_probe(url, TOKEN, None, db, no_replay="not asked")
    assert live.result_ok is False, live.result_detail
    assert "application/octet-stream" in live.result_detail and "recorded image/png" in live.result_detail


def test_a_result_cut_short_fails_the_line_when_its_job_recorded_no_sha256(tmp_path):
    db = _db(tmp_path, None)
    with serving(_service(200, IMAGE, "image/png")) as url:
        assert live_probe(url, TOKEN, None, db, no_replay="not asked").result_ok is True
    with serving(_service(200, IMAGE[:-10], "image/png")) as url:
        live = live_probe(url, TOKEN, None, db, no_replay="not asked")
    assert live.result_ok is False, live.result_detail
    assert f"{len(IMAGE) - 10} bytes (recorded image/png, {len(IMAGE)} bytes)" in live.result_detail


@pytest.mark.parametrize("answer", [{"error": "bad gateway"}, ["bad gateway"]])
def test_a_refusal_whose_json_is_no_error_object_says_so(tmp_path, answer):
    db = _db(tmp_path, None)
    with serving(_service(502, json.dumps(answer).encode(), "application/json")) as url:
        live = live_probe(url, TOKEN, None, db, no_replay="not asked")
    assert live.result_ok is False
    assert "-> 502" in live.result_detail and "no JSON error in the answer" in live.result_detail, live.result_detail
