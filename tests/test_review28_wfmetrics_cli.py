"""`goldgate metrics <stack> --by-workflow-version` compares workflow versions: `--json` has `by_workflow_version`
with the CLI's own figures per version (cancelled, images, cost per completed job and per 1,000 images), and the
text prints a second table, one row per version."""

from __future__ import annotations

import json

import pytest
from metrics_support import fill_job_metrics

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform

V1, V2 = "sdxl-txt2img@1.0.0", "sdxl-txt2img-v2@2.0.0"
TAG = "registry.example/acme/worker@sha256:" + "a" * 64


def stack(tmp_path, jobs):
    """jobs: (version, status, run_ms, e2e_ms, cost, images, created_at)."""
    home = tmp_path / "home"
    fill_job_metrics(LocalPlatform(home).db_path("staging"), jobs, TAG)
    return home


JOBS = [(V1, "completed", 3000, 4000, 0.002, 1, "2026-11-01T00:00:00.000Z"),
        (V1, "completed", 5000, 6000, 0.004, 2, "2026-11-01T00:01:00.000Z"),
        (V1, "failed", 1000, 2000, 0.001, 0, "2026-11-01T00:02:00.000Z"),
        (V2, "completed", 6000, 8000, 0.006, 4, "2026-11-02T00:00:00.000Z"),
        (V2, "cancelled", 500, 1500, 0.0, 0, "2026-11-02T00:01:00.000Z")]


def test_json_has_each_versions_figures_beside_the_releases(tmp_path, capsys):
    home = stack(tmp_path, JOBS)
    assert main(["metrics", "staging", "--home", str(home), "--json", "--by-workflow-version"]) == 0
    report = json.loads(capsys.readouterr().out)
    v1, v2 = report["by_workflow_version"]
    assert (v1["workflow_version"], v1["count"], v1["errors"], v1["cancelled"]) == (V1, 3, 1, 0)
    assert (v2["workflow_version"], v2["count"], v2["errors"], v2["cancelled"]) == (V2, 2, 0, 1)
    assert (v1["images"], v2["images"]) == (3, 4)
    assert v1["error_rate"] == pytest.approx(1 / 3) and v2["error_rate"] == 0
    assert v1["cost_per_completed_job_usd"] == pytest.approx(0.003)  # the failed job's $0.001 left out
    assert v2["cost_per_completed_job_usd"] == pytest.approx(0.006)
    assert v1["cost_per_1000_images_usd"] == pytest.approx(0.007 / 3 * 1000)
    assert v2["cost_per_job_usd"] == pytest.approx(0.003)
    assert (v1["run_ms_mean"], v1["e2e_ms_mean"]) == (3000, 4000)
    assert (v2["run_ms_mean"], v2["e2e_ms_mean"]) == (3250, 4750)
    # the release's figures are the sum of its versions' (the extras are read per release and version)
    (release,) = report["by_worker_image_tag"]
    assert (release["images"], release["count"]) == (7, 5)
    assert release["cost_per_completed_job_usd"] == pytest.approx(0.012 / 3)
    assert report["overall"]["images"] == 7

    assert main(["metrics", "staging", "--home", str(home), "--since", "2026-11-02T00:00:00Z", "--json",
                 "--by-workflow-version"]) == 0
    assert [g["workflow_version"] for g in json.loads(capsys.readouterr().out)["by_workflow_version"]] == [V2]


def test_text_prints_a_row_per_workflow_version_when_there_are_two(tmp_path, capsys):
    assert main(["metrics", "staging", "--home", str(stack(tmp_path, JOBS)), "--by-workflow-version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("WORKFLOW VERSION"))
    assert lines[header - 1] == ""  # after the releases' table
    assert lines[header].split()[:6] == ["WORKFLOW", "VERSION", "FIRST", "SEEN", "JOBS", "ERROR_RATE"]
    assert "E2E MEAN" in lines[header] and "P95" not in lines[header]
    v1, v2 = lines[header + 1:header + 3]
    # 33% is above the stack's thresholds.error_rate: flagged as a release's row is
    assert v1.split()[:9] == [V1, "2026-11-01", "00:00", "3", "33.33%", "!", "1", "0", "3.0s"]
    assert v2.split()[:8] == [V2, "2026-11-02", "00:00", "2", "0.00%", "0", "1", "3.2s"]
    assert len(lines) == header + 3


def test_text_of_one_workflow_version_asked_for_names_it(tmp_path, capsys):
    """Asked for, the table is printed for one version too: the `all` row does not name the version."""
    assert main(["metrics", "staging", "--home", str(stack(tmp_path, [j for j in JOBS if j[0] == V1])),
                 "--by-workflow-version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("WORKFLOW VERSION"))
    assert lines[header + 1].split()[:4] == [V1, "2026-11-01", "00:00", "3"] and len(lines) == header + 2


def test_without_the_flag_there_is_no_version_table_nor_key(tmp_path, capsys):
    home = stack(tmp_path, JOBS)
    assert main(["metrics", "staging", "--home", str(home)]) == 0
    text = capsys.readouterr().out
    assert "WORKFLOW VERSION" not in text and "RELEASE" in text and V1 not in text
    assert main(["metrics", "staging", "--home", str(home), "--json"]) == 0
    assert "by_workflow_version" not in json.loads(capsys.readouterr().out)
