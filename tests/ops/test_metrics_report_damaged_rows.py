"""`goldgate metrics` over a job_metrics table with one damaged end-to-end time (hand-edited, or written by a tool
that is not the service): the row counts as no time, as the percentiles already count it, and the report is made."""

from __future__ import annotations

import json
import sqlite3

import pytest

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


@pytest.mark.parametrize("damage", ["'not a number'", "9e999", "-9e999", "1e300", "x'00ff'", str(2**62 + 5)],
                         ids=["text", "infinity", "minus infinity", "beyond int64", "blob", "beyond the service's limit"])
def test_one_damaged_e2e_time_does_not_sink_the_report_or_its_histogram(tmp_path, stack_db, capsys, damage):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=200)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(f"UPDATE job_metrics SET e2e_ms = {damage} WHERE job_id = 'job-0000007'")
    conn.close()

    assert main(["metrics", "staging", "--home", str(home), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"]["count"] == 200
    histogram = report["histogram"]
    assert sum(b["count"] for b in histogram["bins"]) == 199  # every job with a time, and only those
    assert len({(b["worker_image_tag"], b["bin"]) for b in histogram["bins"]}) == len(histogram["bins"])
    assert histogram["start_ms"] == min(9000 + (i * 37) % 5000 + (i * 101) % 30000 for i in range(1, 201) if i != 7)

    out = tmp_path / "report.html"
    assert main(["metrics", "staging", "--home", str(home), "--html", str(out)]) == 0
    assert "end-to-end latency histogram" in out.read_text()
