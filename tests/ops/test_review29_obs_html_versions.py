"""`goldgate metrics <stack> --html F --by-workflow-version` shows each workflow version in the page, as the text
does: a table with a row per version (jobs, error rate, mean times, cost). The default page (without the flag) has
no such table and names no version."""

from __future__ import annotations

import re

from metrics_support import fill_job_metrics

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform

V1, V2 = "sdxl-txt2img@1.0.0", "sdxl-txt2img-v2@2.0.0"
TAG = "registry.example/acme/worker@sha256:" + "a" * 64
JOBS = [(V1, "completed", 3000, 4000, 0.002, 1, "2026-11-01T00:00:00.000Z"),
        (V1, "failed", 1000, 2000, 0.001, 0, "2026-11-01T00:02:00.000Z"),
        (V2, "completed", 6000, 8000, 0.006, 4, "2026-11-02T00:00:00.000Z")]


def page(tmp_path, *args: str) -> str:
    home = tmp_path / "home"
    if not LocalPlatform(home).db_path("staging").exists():
        fill_job_metrics(LocalPlatform(home).db_path("staging"), JOBS, TAG)
    out = tmp_path / "report.html"
    assert main(["metrics", "staging", "--home", str(home), "--html", str(out), *args]) == 0
    return out.read_text(encoding="utf-8")


def cells(row: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", row)


def test_the_html_shows_each_workflow_version_when_asked(tmp_path, capsys):
    text = page(tmp_path, "--by-workflow-version")
    assert V1 in text and V2 in text
    rows = {cells(r)[0]: cells(r) for r in re.findall(r"<tr>(<td>.*?)</tr>", text)}
    # as the text's table: version, first seen, jobs, error rate (above the stack's threshold: flagged), failed,
    # cancelled, run mean, e2e mean, spend
    assert rows[V1][:9] == [V1, "2026-11-01 00:00", "2", "50.00% !", "1", "0", "2.0s", "3.0s", "$0.00"]
    assert rows[V2][:9] == [V2, "2026-11-02 00:00", "1", "0.00%", "0", "0", "6.0s", "8.0s", "$0.01"]
    assert "<th>workflow version</th>" in text and "<th>e2e mean</th>" in text


def test_the_default_html_names_no_version(tmp_path, capsys):
    text = page(tmp_path)
    assert V1 not in text and V2 not in text and "workflow version" not in text


def test_an_empty_window_asked_for_versions_says_there_is_none(tmp_path, capsys):
    text = page(tmp_path, "--by-workflow-version", "--since", "2026-12-01T00:00:00Z")
    assert "Workflow versions" in text and "No job in the report" in text and V1 not in text


def test_a_version_name_is_shown_as_text_never_as_markup(tmp_path, capsys):
    home = tmp_path / "home"
    hostile = "<script>alert(1)</script>@1"
    fill_job_metrics(LocalPlatform(home).db_path("staging"), [(hostile, *JOBS[0][1:])], TAG)
    text = page(tmp_path, "--by-workflow-version")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;@1" in text
