"""Game day, "Metrics and error rate": PROD was rolled back off a release that failed its jobs.
`goldgate metrics prod` still shows that release's row as the worst (each row covers every job its release
ran), and the runbook said a release worse than its predecessor "is a rollback candidate: `goldgate
rollback`", which, run again, would take PROD off the healthy release it went back to. The metrics now
name the release PROD is pinned to, in the form the runbook quotes, so the reader sees which row a
rollback would act on; `--since` the rollback shows it alone."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from ops_fixtures import NEW_TAG, OLD_TAG, build_stack_db

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.ops.metrics_report import short_tag

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md"
BAD, GOOD = OLD_TAG, NEW_TAG  # build_stack_db fails only the first tag's jobs (an even fail_every)
ROLLED_BACK_AT = "2026-11-02T00:00:00Z"


def _section() -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    start = text.index("\n## Metrics and error rate\n")
    return " ".join(text[start:text.index("\n## ", start + 1)].split())


def _after_the_rollback(db: Path) -> None:
    """The good release's jobs after the rollback: each one of before, a day later."""
    columns = ("stack, status, runpod_queue_duration_ms, runpod_run_duration_ms, e2e_ms, worker_image_tag, "
               "workflow_version, gpu_type, cost_estimate_usd")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(f"INSERT INTO job_metrics (job_id, {columns}, created_at) "
                     f"SELECT 'after-' || job_id, {columns}, "
                     "strftime('%Y-%m-%dT%H:%M:%fZ', created_at, '+1 day') "
                     "FROM job_metrics WHERE worker_image_tag = ?", (GOOD,))
    conn.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    db = build_stack_db(LocalPlatform(home).db_path("prod"), jobs=200, stack="prod", fail_every=4,
                        tags=(BAD, GOOD))
    _after_the_rollback(db)
    StackDir(home, "prod").pin(GOOD, reason="rollback")  # the rollback took PROD off BAD
    return home


def _metrics(capsys: pytest.CaptureFixture, home: Path, *extra: str) -> str:
    capsys.readouterr()
    assert main(["metrics", "prod", "--home", str(home), *extra]) == 0
    return capsys.readouterr().out


def test_the_metrics_name_the_release_prod_is_pinned_to_as_the_runbook_quotes(capsys, home: Path) -> None:
    quoted = re.search(r"`(pinned now: [^`]+)`", _section())
    assert quoted, "the section does not say how the metrics name the release PROD is pinned to"
    expected = quoted.group(1).replace("<repo>@<12 hex>", short_tag(GOOD))
    assert "<" not in expected and short_tag(GOOD) in expected, expected

    first, *rows = _metrics(capsys, home).splitlines()
    assert first.endswith(expected), first
    worst = max(rows[2:], key=lambda row: float(row.split()[4].rstrip("%")))
    assert worst.split()[0] == short_tag(BAD)  # the row that reads worst is not the one a rollback acts on

    first, *rows = _metrics(capsys, home, "--since", ROLLED_BACK_AT).splitlines()
    assert first.endswith(expected) and [r.split()[0] for r in rows[2:]] == [short_tag(GOOD)], rows
    assert rows[2].split()[4] == "0.00%"  # the incident is over: the pinned release fails nothing since


def test_the_html_page_names_it_too(tmp_path: Path, capsys, home: Path) -> None:
    page = tmp_path / "report.html"
    _metrics(capsys, home, "--html", str(page))
    assert f"pinned now: {short_tag(GOOD)}" in page.read_text(encoding="utf-8")
