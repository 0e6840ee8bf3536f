"""The workflow versions' group of the metrics report is opt-in: the default report (dashboards, the promote gate,
cron) runs the statements it ran before versions existed, and costs what it cost then; asked for
(`compute(..., by_workflow_version=True)`, `goldgate metrics <stack> --by-workflow-version`), the group is there.
The API's `?by=workflow_version`: tests/service/test_review28_optin_metrics_api.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from metrics_support import fill_job_metrics

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from service import metrics
from service.ports import Statement
from service.sqlite_database import SqliteDatabase

V1, V2 = "sdxl-txt2img@1.0.0", "sdxl-txt2img-v2@2.0.0"
TAG = "registry.example/acme/worker@sha256:" + "a" * 64
JOBS = [(V1, "completed", 3000, 4000, 0.002, 1, "2026-11-01T00:00:00.000Z"),
        (V1, "failed", 1000, 2000, 0.001, 0, "2026-11-01T00:02:00.000Z"),
        (V2, "completed", 6000, 8000, 0.006, 4, "2026-11-02T00:00:00.000Z")]


def fill(db: Path) -> None:
    """The jobs (version, status, run_ms, e2e_ms, cost, images, created_at) in a migrated database at `db`."""
    fill_job_metrics(db, JOBS, TAG)


QUERY = metrics.SqliteReader.query  # the CLI's reads (read_many runs them one by one through it)


class Recording:
    """The Database port over SQLite, recording each read_many's statements (the Worker: one D1 batch each)."""

    def __init__(self, path: Path) -> None:
        self.db, self.batches = SqliteDatabase(path), []

    async def read_many(self, statements: list[Statement]) -> list[list[dict[str, Any]]]:
        self.batches.append([s.sql for s in statements])
        return await self.db.read_many(statements)


@pytest.fixture
def recording(tmp_path):
    fill(tmp_path / "m.sqlite")
    db = Recording(tmp_path / "m.sqlite")
    yield db
    db.db.close()


@pytest.mark.parametrize("since", [None, "2026-11-01T00:01:00Z"])
def test_the_default_report_runs_the_three_percentile_statements_alone(recording, since):
    report = asyncio.run(metrics.compute(recording, since))
    # one batch (one D1 round trip) of the three percentile statements, as before workflow versions were grouped
    assert recording.batches == [[sql for _, sql in metrics.queries(with_since=since is not None)]]
    assert not any("workflow_version" in sql for sql in recording.batches[0])
    assert "by_workflow_version" not in report
    assert report["overall"]["count"] == (3 if since is None else 2)


def test_asked_for_the_versions_group_is_one_more_statement_in_the_same_batch(recording):
    report = asyncio.run(metrics.compute(recording, None, by_workflow_version=True))
    (batch,) = recording.batches
    assert len(batch) == 4 and batch[1:] == [sql for _, sql in metrics.queries(with_since=False)]
    assert [(g["workflow_version"], g["count"], g["errors"]) for g in report["by_workflow_version"]] == [
        (V1, 2, 1), (V2, 1, 0)]
    # the rest of the answer is the default report's
    default = asyncio.run(metrics.compute(recording, None))
    assert {k: v for k, v in report.items() if k != "by_workflow_version"} == default


def cli_statements(monkeypatch, args: list[str], home: Path) -> tuple[int, list[str]]:
    """`goldgate metrics` with `args`, and every SQL statement it ran on the stack's database."""
    seen: list[str] = []

    async def recorded(self, sql, params=()):
        seen.append(sql)
        return await QUERY(self, sql, params)

    monkeypatch.setattr(metrics.SqliteReader, "query", recorded)
    return main(["metrics", "staging", "--home", str(home), *args]), seen


def test_the_cli_reads_nothing_per_version_unless_asked(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    fill(LocalPlatform(home).db_path("staging"))
    code, default = cli_statements(monkeypatch, ["--json"], home)
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and "by_workflow_version" not in report
    assert not any("workflow_version" in sql for sql in default), default
    (releases,) = [sql for sql in default if "costed_images" in sql]  # images and cost per release: by tag alone
    assert releases.endswith("GROUP BY tag")
    assert report["by_worker_image_tag"][0]["images"] == 5 and report["overall"]["images"] == 5

    code, asked = cli_statements(monkeypatch, ["--json", "--by-workflow-version"], home)
    with_versions = json.loads(capsys.readouterr().out)
    assert code == 0 and [(g["workflow_version"], g["images"]) for g in with_versions["by_workflow_version"]] == [
        (V1, 1), (V2, 4)]
    assert len(asked) == len(default) + 1  # the versions' group
    # the releases' own figures are the same either way
    assert with_versions["by_worker_image_tag"] == report["by_worker_image_tag"]
    assert with_versions["overall"] == report["overall"]

    code, _ = cli_statements(monkeypatch, [], home)
    text = capsys.readouterr().out
    assert code == 0 and "WORKFLOW VERSION" not in text and V1 not in text
    code, _ = cli_statements(monkeypatch, ["--by-workflow-version"], home)
    text = capsys.readouterr().out
    assert code == 0 and "WORKFLOW VERSION" in text and V1 in text and V2 in text
