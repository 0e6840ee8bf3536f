"""GET /api/metrics?by=workflow_version groups the jobs by workflow version too (`by_workflow_version`, asked for:
the default report has none, see test_review28_optin_metrics_default.py): a workflow author shipping
`sdxl-txt2img-v2` next to `sdxl-txt2img` compares their counts, error rates, cost and mean run and end-to-end
times. The group's SQL (read in rowid chunks, summed per version) equals a plain Python computation on the same
rows, whatever the chunk size, the rowids or the stored values; it rides in the report's one read_many batch (one
D1 round trip); and the answer matches docs/openapi.json."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service import metrics
from service.migrate import apply_sqlite
from service.ports import Statement
from service.sqlite_database import SqliteDatabase

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ["sdxl-txt2img@1.0.0", "sdxl-txt2img-v2@2.0.0", "flux-dev@1.2.0", None]
HAND_WRITTEN = [b"\x01\xff", 7]  # values the service never writes: a blob is named X'01FF', a number as text


def named(version: Any) -> str | None:
    if isinstance(version, bytes):
        return f"X'{version.hex().upper()}'"
    return None if version is None else str(version)
LIMIT = 2**62 - 1  # service.metrics.DURATION_LIMIT_MS, stated here as the documented rule


def memory_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_sqlite(conn, ROOT / "migrations")
    return conn


def counted(value: Any) -> float | None:
    """A stored duration the mean counts: a number within +-(2**62 - 1) ms, as stored; else none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value if abs(value) <= LIMIT else None


durations = st.one_of(st.none(), st.integers(0, 10**6), st.floats(-5, 5, allow_nan=False),
                      st.sampled_from([float("inf"), -(2**63), 2**62, "12 s", b"\x00"]))
rows_strategy = st.lists(st.tuples(
    st.sampled_from(VERSIONS + HAND_WRITTEN),
    st.sampled_from(["completed", "failed", "timed_out", "cancelled"]),
    durations,
    durations,
    st.one_of(st.none(), st.floats(0, 5, allow_nan=False), st.just(1e308)),  # two absurd costs: an infinite sum
    st.integers(0, 3),  # the day it was created
    st.integers(1, 3),  # the gap to the row's rowid from the one before
), max_size=60)


@settings(max_examples=80, deadline=None)
@given(rows=rows_strategy, since_day=st.one_of(st.none(), st.integers(0, 3)), chunk=st.sampled_from([1, 2, 5, 4096]),
       last_rowid=st.booleans())
def test_each_workflow_versions_figures_equal_a_plain_python_computation(rows, since_day, chunk, last_rowid):
    conn = memory_db()
    rowid = 0
    for i, (version, status, e2e, run, usd, day, gap) in enumerate(rows):
        rowid += gap
        if last_rowid and i == len(rows) - 1:
            rowid = 2**63 - 1  # the largest rowid there is: the last chunk reaches it
        conn.execute("INSERT INTO job_metrics (rowid, job_id, stack, status, e2e_ms, runpod_run_duration_ms, "
                     "workflow_version, cost_estimate_usd, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                     (rowid, f"j{i}", "s", status, e2e, run, version, usd, f"2026-01-0{day + 1}T00:00:0{i % 10}.000Z"))
    since = None if since_day is None else f"2026-01-0{since_day + 1}T00:00:00Z"
    saved = getattr(metrics, "VERSION_CHUNK_ROWS", None)
    metrics.VERSION_CHUNK_ROWS = chunk  # chunks of a row or a few: each boundary is crossed
    try:
        report = metrics.compute_sqlite(conn, since, by_workflow_version=True)
    finally:
        metrics.VERSION_CHUNK_ROWS = saved
    created = [f"2026-01-0{r[5] + 1}T00:00:0{i % 10}.000Z" for i, r in enumerate(rows)]
    kept = [(r, at) for r, at in zip(rows, created, strict=True) if since_day is None or r[5] >= since_day]

    def mean(values: list[Any]) -> float | None:
        values = [v for v in map(counted, values) if v is not None]
        return sum(values) / len(values) if values else None

    expected = []
    for version in [*VERSIONS, "X'01FF'", "7"]:
        mine = [r for r, _ in kept if named(r[0]) == version]
        if not mine:
            continue
        errors = sum(r[1] in ("failed", "timed_out") for r in mine)
        costs = [r[4] for r in mine if r[4] is not None]
        first = min(at for r, at in kept if named(r[0]) == version)
        expected.append({"workflow_version": version, "first_seen": first, "count": len(mine),
                         "completed": sum(r[1] == "completed" for r in mine), "errors": errors,
                         "error_rate": errors / len(mine), "cost_total_usd": sum(costs) if costs else None,
                         "cost_mean_usd": sum(costs) / len(costs) if costs else None,
                         "e2e_ms_mean": mean([r[2] for r in mine]), "run_ms_mean": mean([r[3] for r in mine])})
    expected.sort(key=lambda g: (g["first_seen"], g["workflow_version"] is None, g["workflow_version"] or ""))
    got = report["by_workflow_version"]
    exact = ("workflow_version", "first_seen", "count", "completed", "errors")
    assert [{k: g[k] for k in exact} for g in got] == [{k: g[k] for k in exact} for g in expected]
    for mine, want in zip(got, expected, strict=True):
        assert set(mine) == set(want)
        for key in ("error_rate", "cost_total_usd", "cost_mean_usd", "e2e_ms_mean", "run_ms_mean"):
            if want[key] is None:
                assert mine[key] is None, (key, mine)
            else:
                assert math.isclose(mine[key], want[key], rel_tol=1e-9, abs_tol=1e-9), (key, mine, want)
    assert sum(g["count"] for g in got) == report["overall"]["count"]


class Recording:
    """The Database port over SQLite, recording each call (the Worker's D1 adapter: one batch per read_many)."""

    def __init__(self, path: Path) -> None:
        self.db, self.calls = SqliteDatabase(path), []

    async def read_many(self, statements: list[Statement]) -> list[list[dict[str, Any]]]:
        self.calls.append(("read_many", len(statements)))
        return await self.db.read_many(statements)

    async def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        self.calls.append(("query", 1))
        return await self.db.query(sql, params)


def test_the_api_answer_has_the_versions_in_its_one_batch_and_matches_the_openapi_document(tmp_path):
    path = tmp_path / "m.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_sqlite(conn, ROOT / "migrations")
    jobs = [("sdxl-txt2img@1.0.0", "completed", 4000, 3000, 0.002, "2026-01-01T00:00:00.000Z"),
            ("sdxl-txt2img@1.0.0", "failed", 1000, 500, 0.001, "2026-01-01T01:00:00.000Z"),
            ("sdxl-txt2img-v2@2.0.0", "completed", 6000, 5000, 0.004, "2026-01-02T00:00:00.000Z"),
            ("sdxl-txt2img-v2@2.0.0", "completed", 8000, 7000, None, "2026-01-02T01:00:00.000Z")]
    conn.executemany("INSERT INTO job_metrics (job_id, stack, workflow_version, status, e2e_ms, runpod_run_duration_ms, "
                     "cost_estimate_usd, worker_image_tag, created_at) VALUES (?, 's', ?, ?, ?, ?, ?, 'img@sha256:aa', ?)",
                     [(f"j{i}", *job) for i, job in enumerate(jobs)])
    conn.close()
    db = Recording(path)
    try:
        report = asyncio.run(metrics.compute(db, None, by_workflow_version=True))
        later = asyncio.run(metrics.compute(db, "2026-01-02T00:00:00Z", by_workflow_version=True))
    finally:
        db.db.close()
    # one read_many a report: the three percentile queries and the versions' (one D1 round trip)
    assert db.calls == [("read_many", 4), ("read_many", 4)]
    v1, v2 = report["by_workflow_version"]
    assert (v1["workflow_version"], v1["count"], v1["errors"], v1["error_rate"]) == ("sdxl-txt2img@1.0.0", 2, 1, 0.5)
    assert (v2["workflow_version"], v2["count"], v2["errors"], v2["error_rate"]) == ("sdxl-txt2img-v2@2.0.0", 2, 0, 0.0)
    assert v1["cost_total_usd"] == 0.003 and v1["cost_mean_usd"] == 0.0015
    assert v2["cost_total_usd"] == 0.004 and v2["cost_mean_usd"] == 0.004  # the job without an estimate: unknown
    assert (v1["e2e_ms_mean"], v1["run_ms_mean"], v2["e2e_ms_mean"], v2["run_ms_mean"]) == (2500, 1750, 7000, 6000)
    assert (v1["first_seen"], v2["first_seen"]) == ("2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z")
    assert [g["workflow_version"] for g in later["by_workflow_version"]] == ["sdxl-txt2img-v2@2.0.0"]

    doc = json.loads((ROOT / "docs" / "openapi.json").read_text())
    uri = "urn:goldgate-openapi"
    registry = Registry().with_resource(uri, Resource.from_contents(doc, default_specification=DRAFT202012))
    schema = {"$ref": f"{uri}#/components/schemas/MetricsReport"}
    for answer in (report, later):
        body = json.loads(json.dumps(answer))  # as the route sends it
        jsonschema.Draft202012Validator(schema, registry=registry).validate(body)
    wrong = json.loads(json.dumps(report))
    wrong["by_workflow_version"][0]["e2e_ms"] = {"p50": 1}  # the document says what a version group holds
    assert list(jsonschema.Draft202012Validator(schema, registry=registry).iter_errors(wrong))


def test_a_database_without_rows_has_no_version_group():
    assert metrics.compute_sqlite(memory_db(), by_workflow_version=True)["by_workflow_version"] == []
