"""Review 14 (m4): the metrics report's histogram holds every timed job in its HISTOGRAM_BINS bars."""

from __future__ import annotations

import sqlite3

from goldgate.ops.metrics_report import HISTOGRAM_BINS, render_html, render_text, report_from_sqlite


def test_the_slowest_job_falls_in_the_last_of_the_twenty_bars_not_a_twenty_first(tmp_path, stack_db):
    path = stack_db(tmp_path / "db.sqlite", jobs=400, fail_every=50)
    conn = sqlite3.connect(path)
    with conn:  # end-to-end times 1.000 s .. 2.995 s, 5 ms apart: a range that does not divide by 20
        conn.execute("UPDATE job_metrics SET e2e_ms = 1000 + 5 * (rowid - 1)")
        lo, hi, n = conn.execute("SELECT min(e2e_ms), max(e2e_ms), count(*) FROM job_metrics").fetchone()
    conn.close()
    report = report_from_sqlite(path, "staging")
    hist = report["histogram"]
    bins = {b["bin"] for b in hist["bins"]}
    assert hist["start_ms"] == lo and sum(b["count"] for b in hist["bins"]) == n
    assert max(bins) == HISTOGRAM_BINS - 1, sorted(bins)  # the slowest job's bar is the 20th
    assert hist["start_ms"] + HISTOGRAM_BINS * hist["bin_ms"] > hi  # the bars cover every time
    page = render_html(report)
    assert page.count("jobs</title></rect>") == sum(1 for _ in hist["bins"])  # one bar segment per (release, bin)


def test_the_text_report_shows_the_error_rate_as_a_percentage(tmp_path, stack_db):
    path = stack_db(tmp_path / "db.sqlite", jobs=400, fail_every=20)  # every 20th job failed: 5 %
    report = report_from_sqlite(path, "staging")
    assert report["overall"]["error_rate"] == 0.05
    all_row = next(line for line in render_text(report).splitlines() if line.lstrip().startswith("all"))
    assert "5.00%" in all_row and "0.05%" not in all_row, all_row


def test_the_histogram_of_a_report_since_a_time_counts_only_the_jobs_since_then(tmp_path, stack_db):
    path = stack_db(tmp_path / "db.sqlite", jobs=400, fail_every=50)
    conn = sqlite3.connect(path)
    since = conn.execute("SELECT created_at FROM job_metrics ORDER BY created_at LIMIT 1 OFFSET 300").fetchone()[0]
    conn.close()
    report = report_from_sqlite(path, "staging", since=since)
    timed = report["overall"]["count"]
    assert 0 < timed < 400
    assert sum(b["count"] for b in report["histogram"]["bins"]) == timed  # the table's jobs, and only those
