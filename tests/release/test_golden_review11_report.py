"""Writing a golden report is whole or nothing: a write cut short (here by a file-size limit, as a full disk
would) leaves latest.json and latest.html as they were and no partial copy beside them. The HTML view escapes
what a case, a job or a worker put in the report."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ci_policy import require

from goldgate.release.report_html import render

# Runs in a child: the file-size limit and its signal must not reach the test process.
_CUT_SHORT = textwrap.dedent("""
    import json, resource, signal, sys
    from pathlib import Path
    from goldgate.release.report import write_report
    from goldgate.release.report_html import write_html
    reports = Path(sys.argv[1])
    report = json.loads(Path(sys.argv[2]).read_text())
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG) instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
    try:
        {call}
    except OSError as exc:
        print(exc.errno)
""")


def big_report() -> dict:
    cases = [{"id": f"case-{i}", "workflow_id": "wf", "passed": True, "latency_s": 1.0, "job_id": f"job-{i}",
              "checks": [{"name": "completed", "passed": True, "detail": "x" * 200}]} for i in range(20)]
    return {"schema": "goldgate.golden-report.v1", "stack": "staging", "suite": "full", "passed": True,
            "cases": cases, "failures": [], "latency_s": {}, "thresholds": {}}


@pytest.mark.parametrize(("name", "call"), [
    ("latest.json", "write_report(report, reports)"),
    ("latest.html", "write_html(report, reports / 'latest.json')"),
])
def test_a_report_write_cut_short_leaves_the_last_one_whole(tmp_path: Path, name: str, call: str) -> None:
    require(importlib.util.find_spec("resource") is not None, "the resource module (POSIX file-size limits)")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / name).write_text("the last report\n")
    (tmp_path / "report.json").write_text(json.dumps(big_report()))
    child = subprocess.run([sys.executable, "-c", _CUT_SHORT.replace("{call}", call), str(reports),
                            str(tmp_path / "report.json")], check=False, capture_output=True, text=True,
                           timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "27"  # EFBIG: the write was cut short
    assert (reports / name).read_text() == "the last report\n"
    assert sorted(p.name for p in reports.iterdir()) == [name]  # no partial copy left beside it


def test_the_html_report_escapes_case_ids_job_ids_and_worker_errors() -> None:
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    report = big_report()
    report.update(stack=evil, image=evil, failures=[f"{evil}: completed: status failed: {evil}"], passed=False)
    report["cases"] = [{"id": evil, "workflow_id": evil, "passed": False, "latency_s": 2.0, "job_id": evil,
                        "checks": [{"name": evil, "passed": False, "detail": f"status failed: {evil}"}]}]
    page = render(report)
    assert "<script" not in page and "<img" not in page and "onerror=\"" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
