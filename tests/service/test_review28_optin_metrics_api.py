"""GET /api/metrics groups the jobs by workflow version only when asked (`?by=workflow_version`): the default
answer (dashboards, the promote gate, cron) has no `by_workflow_version` and is one batch of the three percentile
statements, as before versions were grouped; any other `by` is 400 `invalid_query` naming `by`, before anything
is read."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from service import metrics, spend

V1, V2 = "sdxl-txt2img@1.0.0", "sdxl-txt2img-v2@2.0.0"


@pytest.fixture
def batches(svc, db_path, monkeypatch) -> list[list[str]]:
    """Two versions' jobs in the service's database; the SQL of every read the app makes from then on."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.executemany("INSERT INTO job_metrics (job_id, stack, workflow_version, status, e2e_ms, created_at) "
                         "VALUES (?, 'test', ?, ?, ?, ?)",
                         [("j1", V1, "completed", 4000, "2026-11-01T00:00:00.000Z"),
                          ("j2", V1, "failed", 2000, "2026-11-01T00:01:00.000Z"),
                          ("j3", V2, "completed", 8000, "2026-11-02T00:00:00.000Z")])
    conn.close()
    seen: list[list[str]] = []
    read_many, query = svc.app.db.read_many, svc.app.db.query

    async def recorded_many(statements: Any) -> Any:
        seen.append([s.sql for s in statements])
        return await read_many(statements)

    async def recorded(sql: str, params: Any = ()) -> Any:
        seen.append([sql])
        return await query(sql, params)

    monkeypatch.setattr(svc.app.db, "read_many", recorded_many)
    monkeypatch.setattr(svc.app.db, "query", recorded)
    return seen


def test_the_default_answer_has_no_versions_and_runs_the_three_percentile_statements(svc, batches):
    status, body, _ = svc.call("GET", "/api/metrics")
    assert status == 200 and "by_workflow_version" not in body and body["overall"]["count"] == 3
    # and today's spend (review 34: service/spend.py), and each client's (review 35), in the same batch
    today = [spend.today_statement(0).sql, spend.clients_today_statement(0).sql]
    assert batches == [[*(sql for _, sql in metrics.queries(with_since=False)), *today]]
    status, body, _ = svc.call("GET", "/api/metrics", query="since=2026-11-02T00:00:00Z")
    assert status == 200 and "by_workflow_version" not in body and body["overall"]["count"] == 1
    assert batches[1:] == [[*(sql for _, sql in metrics.queries(with_since=True)), *today]]


def test_by_workflow_version_adds_the_group_in_the_same_batch(svc, batches):
    status, body, _ = svc.call("GET", "/api/metrics", query="by=workflow_version&since=2026-11-01T00:00:30Z")
    assert status == 200, body
    assert [(g["workflow_version"], g["count"], g["errors"]) for g in body["by_workflow_version"]] == [
        (V1, 1, 1), (V2, 1, 0)]
    (batch,) = batches  # one D1 round trip still: the versions' statement, the three percentile ones and the spend
    assert len(batch) == 6 and batch[1:-2] == [sql for _, sql in metrics.queries(with_since=True)]
    default = svc.call("GET", "/api/metrics", query="since=2026-11-01T00:00:30Z")[1]
    assert {k: v for k, v in body.items() if k != "by_workflow_version"} == default


@pytest.mark.parametrize("query", ["by=tag", "by=", "by", "by=workflow_version,tag", "by=Workflow_Version",
                                   "by=workflow_version&by=workflow_version", "by=tag&by=workflow_version",
                                   "since=2026-11-01T00:00:00Z&by=worker_image_tag"])
def test_any_other_by_is_refused_400_before_anything_is_read(svc, batches, query):
    status, body, headers = svc.call("GET", "/api/metrics", query=query)
    assert status == 400, body
    assert body["error"]["code"] == "invalid_query" and body["error"]["field"] == "by"
    assert "workflow_version" in body["error"]["message"]
    assert headers.get("cache-control") == "no-store"
    assert batches == []  # nothing read
    assert svc.call("HEAD", "/api/metrics", query=query)[0] == 400
    assert batches == []
    # the refusal changed nothing: the default report still answers as it did
    status, body, _ = svc.call("GET", "/api/metrics")
    assert status == 200 and body["overall"]["count"] == 3 and "by_workflow_version" not in body
