"""`goldgate metrics`: percentiles, error rate and cost per release from job_metrics; text, JSON, HTML."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from ci_policy import require
from ops_fixtures import NEW_TAG, OLD_TAG
from PIL import Image

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.ops.metrics_report import (
    MetricsUnavailable,
    render_html,
    render_text,
    report_from_sqlite,
    short_tag,
)


@pytest.fixture
def home(tmp_path, stack_db):
    home = tmp_path / "home"
    stack_db(LocalPlatform(home).db_path("staging"), jobs=1_000, fail_every=20)
    return home


def test_report_has_percentiles_error_rate_and_cost_per_release(home):
    report = report_from_sqlite(LocalPlatform(home).db_path("staging"), "staging")
    overall = report["overall"]
    assert overall["count"] == 1_000 and overall["error_rate"] == pytest.approx(0.05)
    for metric in ("queue_ms", "run_ms", "e2e_ms"):
        p = overall[metric]
        assert p["p50"] <= p["p95"] <= p["p99"]
    assert overall["cost_per_job_usd"] == pytest.approx(overall["cost_total_usd"] / 1_000)
    # one image per completed job in the fixture: 950 images
    assert overall["images"] == 950
    assert overall["cost_per_1000_images_usd"] == pytest.approx(overall["cost_total_usd"] / 950 * 1000)
    assert {g["worker_image_tag"] for g in report["by_worker_image_tag"]} == {OLD_TAG, NEW_TAG}
    assert sum(b["count"] for b in report["histogram"]["bins"]) == 1_000


def test_cli_prints_a_table_and_json(home, capsys):
    assert main(["metrics", "staging", "--home", str(home)]) == 0
    text = capsys.readouterr().out
    assert "E2E P95" in text and "worker@bbbbbbbbbbbb" in text
    assert main(["metrics", "staging", "--home", str(home), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["overall"]["count"] == 1_000


def test_since_filters_and_a_bad_since_is_one_line_error(home, capsys):
    assert main(["metrics", "staging", "--home", str(home), "--since", "2026-11-01T00:08:21Z", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["count"] == 500
    with pytest.raises(SystemExit) as exited:  # a usage error, as argparse reports one
        main(["metrics", "staging", "--home", str(home), "--since", "yesterday-ish"])
    assert exited.value.code == 2
    assert "goldgate metrics: error: argument --since: must be an ISO 8601 time" in capsys.readouterr().err


def test_a_stack_without_a_database_is_a_clear_error(tmp_path, capsys):
    assert main(["metrics", "staging", "--home", str(tmp_path)]) == 1
    assert "no database at" in capsys.readouterr().err
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(MetricsUnavailable, match="no readable job_metrics"):
        report_from_sqlite(tmp_path / "junk.sqlite", "staging")


def test_one_job_with_garbled_results_json_does_not_sink_the_report(home):
    import sqlite3

    db = LocalPlatform(home).db_path("staging")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("""UPDATE jobs SET results_json = '[{"key": "results/x/0.png", "con' WHERE id = 'job-0000001'""")
    conn.close()
    report = report_from_sqlite(db, "staging")
    assert report["overall"]["count"] == 1_000 and report["overall"]["error_rate"] == pytest.approx(0.05)
    assert report["overall"]["images"] == 950


def test_html_escapes_hostile_tags(home):
    report = report_from_sqlite(LocalPlatform(home).db_path("staging"), "staging")
    report["by_worker_image_tag"][0]["worker_image_tag"] = "<script>alert(1)</script>"
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no external assets


def test_html_report_renders_in_headless_chromium(home, tmp_path):
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    require(chromium is not None, "chromium (Debian package `chromium`)")
    page = tmp_path / "metrics.html"
    assert main(["metrics", "staging", "--home", str(home), "--html", str(page)]) == 0
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
         page.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    image = Image.open(shot).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 20) or []
    non_white = sum(n for n, rgb in colors if rgb != (255, 255, 255))
    assert len(colors) > 8, "the screenshot is (nearly) one colour: the page did not render"
    assert non_white > 0.02 * image.width * image.height
    # the bar colours of both releases are on screen (the SVG charts rendered)
    rgbs = {rgb for _, rgb in colors}
    assert (0x25, 0x63, 0xEB) in rgbs and (0xF5, 0x9E, 0x0B) in rgbs


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def test_json_stays_valid_json_when_sums_overflow(home, capsys):
    import sqlite3

    conn = sqlite3.connect(LocalPlatform(home).db_path("staging"))
    with conn:
        conn.execute("UPDATE job_metrics SET cost_estimate_usd = 1e308")  # absurd costs: their sum is infinite
    conn.close()
    assert main(["metrics", "staging", "--home", str(home), "--json"]) == 0
    data = json.loads(capsys.readouterr().out, parse_constant=_no_constants)
    assert data["overall"]["count"] == 1_000 and data["overall"]["cost_total_usd"] is None


def test_a_home_whose_path_holds_uri_characters_reports_the_stacks_own_jobs(tmp_path, stack_db, capsys):
    from goldgate.ops.checklist_facts import read_job_facts

    home = tmp_path / "team#2?x" / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=40)
    assert main(["metrics", "staging", "--home", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["count"] == 40
    assert read_job_facts(db).total == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team#2?x"]


def _per_image(report):
    return [(g["images"], g["cost_per_1000_images_usd"]) for g in (report["overall"], *report["by_worker_image_tag"])]


def test_a_database_upgraded_to_the_images_column_reports_its_older_jobs_images_from_their_results(tmp_path):
    import sqlite3

    from goldgate.migrations import MIGRATIONS_DIR, apply_sqlite

    before_images = tmp_path / "migrations-before-0003"
    before_images.mkdir()
    for name in ("0001_init.sql", "0002_idempotency_keys.sql"):
        shutil.copy(MIGRATIONS_DIR / name, before_images / name)
    db = tmp_path / "stack.sqlite"
    apply_sqlite(db, before_images)
    conn = sqlite3.connect(db)
    with conn:
        for i, (status, images) in enumerate((("completed", 3), ("completed", 1), ("failed", 0))):
            results = json.dumps([{"key": f"results/j{i}/{n}.png"} for n in range(images)]) if images else None
            conn.execute("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                         "results_json, created_at, created_at_ms, updated_at) VALUES (?, 'staging', 'w', 'w@1', '{}', "
                         "'t', ?, ?, '2026-11-01T00:00:00.000Z', 0, '2026-11-01T00:00:00.000Z')", (f"j{i}", status,
                                                                                                   results))
            conn.execute("INSERT INTO job_metrics (job_id, stack, status, worker_image_tag, cost_estimate_usd, "
                         "created_at) VALUES (?, 'staging', ?, ?, 0.01, '2026-11-01T00:00:00.000Z')",
                         (f"j{i}", status, OLD_TAG))
    conn.close()
    before = report_from_sqlite(db, "staging")

    assert apply_sqlite(db)[0] == "0003_job_metrics_images.sql"  # and any later migration

    after = report_from_sqlite(db, "staging")
    assert after["overall"]["images"] == 4 and _per_image(after) == _per_image(before)


def test_cost_per_1000_images_is_unchanged_when_jobs_whose_metrics_carry_their_images_are_pruned(home):
    import sqlite3

    db = LocalPlatform(home).db_path("staging")
    conn = sqlite3.connect(db)
    with conn:  # even jobs made two images; the fixture's metrics rows predate the images column
        conn.execute("UPDATE jobs SET results_json = json_array(json('{\"key\": \"a.png\"}'), "
                     "json('{\"key\": \"b.png\"}')) WHERE CAST(substr(id, 5) AS INTEGER) % 2 = 0")
    before = report_from_sqlite(db, "staging")
    with conn:  # the first half written since, by the transition (which records images), then pruned
        conn.execute("UPDATE job_metrics SET images = (SELECT CASE WHEN j.status = 'completed' THEN "
                     "json_array_length(j.results_json) ELSE 0 END FROM jobs j WHERE j.id = job_metrics.job_id) "
                     "WHERE job_id <= 'job-0000500'")
        conn.execute("DELETE FROM webhook_deliveries WHERE job_id <= 'job-0000500'")
        conn.execute("DELETE FROM jobs WHERE id <= 'job-0000500'")
    conn.close()

    after = report_from_sqlite(db, "staging")

    completed = [i for i in range(1, 1_001) if i % 20]
    assert before["overall"]["images"] == sum(2 if i % 2 == 0 else 1 for i in completed)
    assert _per_image(after) == _per_image(before)


def _a_release_a_day(db, releases):
    """job_metrics of `releases` releases, one a day from 2026-01-01, three jobs each; returns their tags."""
    import hashlib
    import sqlite3

    from goldgate.migrations import apply_sqlite

    apply_sqlite(db)
    tags = [f"registry.example/acme/worker@sha256:{hashlib.sha256(str(day).encode()).hexdigest()}" for day in range(releases)]
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("INSERT INTO job_metrics (job_id, stack, status, runpod_queue_duration_ms, "
                         "runpod_run_duration_ms, e2e_ms, worker_image_tag, created_at) VALUES "
                         "(?, 'prod', 'completed', ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01', ?))",
                         [(f"j{day}-{n}", 500 + n, 4000 + day, 5000 + day + n, tag, f"+{day} days")
                          for day, tag in enumerate(tags) for n in range(3)])
    conn.close()
    return tags


def test_the_html_charts_of_a_year_of_releases_draw_the_newest_each_in_its_own_colour(tmp_path):
    import re
    import xml.etree.ElementTree as ET

    db = tmp_path / "prod.sqlite"
    tags = _a_release_a_day(db, 120)
    page = render_html(report_from_sqlite(db, "prod"))

    chart = ET.fromstring(re.search(r'<svg[^>]*aria-label="latency percentiles by release".*?</svg>', page,
                                    re.DOTALL).group(0))
    bars = list(chart.iter("{http://www.w3.org/2000/svg}rect"))
    assert bars and all(float(r.get("width")) >= 1 for r in bars)  # a bar 0 px wide is not on the page
    fills = {r.get("fill") for r in bars}
    drawn = {r.find("{http://www.w3.org/2000/svg}title").text.split(" ")[0] for r in bars}
    newest = [short_tag(t) for t in tags[-8:]]
    assert len(fills) == len(drawn) == 8 and sorted(drawn) == sorted(newest)
    assert "the newest 8 of 120 releases" in page and "112 earlier releases" in page
    histogram = ET.fromstring(re.search(r'<svg[^>]*aria-label="end-to-end latency histogram".*?</svg>', page,
                                        re.DOTALL).group(0))
    stacked = [r.find("{http://www.w3.org/2000/svg}title").text.rsplit(": ", 1)
               for r in histogram.iter("{http://www.w3.org/2000/svg}rect")]
    assert sum(int(n.split()[0]) for _, n in stacked) == 360  # every job, the earlier releases' in one grey band
    assert {label for label, _ in stacked} <= {*newest, "112 earlier releases"}


def test_the_text_report_says_when_each_of_a_year_of_releases_first_ran(tmp_path, capsys):
    db = tmp_path / "prod.sqlite"
    tags = _a_release_a_day(db, 365)
    print(render_text(report_from_sqlite(db, "prod")))
    lines = capsys.readouterr().out.splitlines()

    assert lines[1].split()[:4] == ["RELEASE", "FIRST", "SEEN", "JOBS"]
    releases = lines[3:]
    assert len(releases) == 365
    assert releases[0].split()[:3] == [short_tag(tags[0]), "2026-01-01", "00:00"]
    assert releases[-1].split()[:3] == [short_tag(tags[-1]), "2026-12-31", "00:00"]


def test_cost_per_1000_images_divides_the_cost_by_the_images_it_paid_for(tmp_path):
    # A job recovered from the outcome its worker stored has images but no cost (RunPod's timings were gone):
    # counting its images would make every image of that release look cheaper than it was.
    import sqlite3

    from goldgate.migrations import apply_sqlite

    db = tmp_path / "stack.sqlite"
    apply_sqlite(db)
    conn = sqlite3.connect(db)
    with conn:
        for job, images, cost in (("j1", 2, 0.01), ("j2", 3, None)):
            conn.execute("INSERT INTO job_metrics (job_id, stack, status, worker_image_tag, cost_estimate_usd, images, "
                         "created_at) VALUES (?, 'staging', 'completed', ?, ?, ?, '2026-11-01T00:00:00.000Z')",
                         (job, OLD_TAG, cost, images))
    conn.close()
    report = report_from_sqlite(db, "staging")
    assert report["overall"]["images"] == 5  # every image the release made
    assert report["overall"]["cost_per_1000_images_usd"] == pytest.approx(0.01 / 2 * 1000)
    assert report["by_worker_image_tag"][0]["cost_per_1000_images_usd"] == pytest.approx(5.0)
