"""`goldgate metrics` text: what an SRE and a cost owner need without --json (review 27): the total spend, the
failed and cancelled jobs, the stack's error-rate threshold with a breach flag, cost per completed job, and a
--since in the future said on stderr rather than a silent 0 jobs."""

from __future__ import annotations

import json
import sqlite3

import pytest

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


def _home(tmp_path, stack_db, fail_every: int, cancel: int = 0):
    home = tmp_path / "home"
    path = LocalPlatform(home).db_path("staging")
    stack_db(path, jobs=200, fail_every=fail_every)
    if cancel:  # the first `cancel` completed jobs were cancelled instead, at no cost
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("UPDATE job_metrics SET status = 'cancelled', cost_estimate_usd = 0 WHERE job_id IN "
                         "(SELECT job_id FROM job_metrics WHERE status = 'completed' ORDER BY job_id LIMIT ?)",
                         (cancel,))
        conn.close()
    return home


def _json(home, capsys) -> dict:
    assert main(["metrics", "staging", "--home", str(home), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _text(home, capsys, *extra: str) -> tuple[str, str]:
    assert main(["metrics", "staging", "--home", str(home), *extra]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_the_text_gives_the_total_spend_and_the_failed_and_cancelled_jobs(tmp_path, stack_db, capsys):
    home = _home(tmp_path, stack_db, fail_every=20, cancel=7)  # 10 failed, 7 cancelled of 200
    total = _json(home, capsys)["overall"]["cost_total_usd"]
    text, _ = _text(home, capsys)
    assert f"${total:.2f}" in text, text  # the spend, not only the per-job means
    summary = text.splitlines()[0]
    assert "200 jobs" in summary and "183 completed" in summary and "10 failed" in summary, summary
    assert "7 cancelled" in summary, summary
    header = next(line for line in text.splitlines() if line.startswith("RELEASE"))
    all_row = next(line for line in text.splitlines() if line.startswith("all "))

    def cell(name: str) -> str:
        return all_row[header.index(name):].split()[0]

    assert cell("FAILED") == "10" and cell("CANCELLED") == "7", (header, all_row)


def test_the_text_flags_an_error_rate_above_the_stacks_threshold(tmp_path, stack_db, capsys):
    # stacks/local.yaml: staging's thresholds.error_rate is 5 %; every 10th job failed is 10 %
    text, _ = _text(_home(tmp_path, stack_db, fail_every=10), capsys)
    line = next(line for line in text.splitlines() if "thresholds.error_rate" in line)
    assert "5.00%" in line and "10.00%" in line and "ABOVE" in line, line
    all_row = next(line for line in text.splitlines() if line.startswith("all "))
    assert "10.00% !" in all_row, all_row


def test_an_error_rate_within_the_threshold_is_not_flagged(tmp_path, stack_db, capsys):
    text, _ = _text(_home(tmp_path, stack_db, fail_every=50), capsys)  # 2 % against 5 %
    line = next(line for line in text.splitlines() if "thresholds.error_rate" in line)
    assert "2.00%" in line and "within" in line and "ABOVE" not in line, line
    assert "% !" not in text


def test_cost_per_completed_job_leaves_out_the_free_cancelled_jobs(tmp_path, stack_db, capsys):
    home = _home(tmp_path, stack_db, fail_every=1000, cancel=100)  # half the jobs cancelled at $0
    overall = _json(home, capsys)["overall"]
    conn = sqlite3.connect(LocalPlatform(home).db_path("staging"))
    mean = conn.execute("SELECT AVG(cost_estimate_usd) FROM job_metrics WHERE status = 'completed'").fetchone()[0]
    conn.close()
    assert overall["cost_per_completed_job_usd"] == pytest.approx(mean)
    assert overall["cost_per_job_usd"] == pytest.approx(mean / 2, rel=0.05)  # the $0 jobs halve the mean
    assert overall["cancelled"] == 100
    text, _ = _text(home, capsys)
    assert f"${mean:.5f}" in next(line for line in text.splitlines() if line.startswith("all ")), text


def test_a_since_in_the_future_is_said_on_stderr(tmp_path, stack_db, capsys):
    home = _home(tmp_path, stack_db, fail_every=20)
    _, err = _text(home, capsys, "--since", "2999-01-01T00:00:00Z")
    assert "in the future" in err and "2999-01-01" in err, err
    _, err = _text(home, capsys, "--since", "2026-11-01T00:00:00Z")
    assert "in the future" not in err, err
