"""The result lines judge the pinned image's results, as the rest of those lines judges its jobs: a completed job
without images, or a stored result that is not an image, of an image replaced since neither keeps the line red
nor is passed over when it is the pinned image's. And a golden report's `"mean": true` is no latency."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from ops_fixtures import NEW_TAG, OLD_TAG, build_stack_db
from test_checklist import healthy  # noqa: F401 -- the module's healthy deployment, a pytest fixture

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, read_job_facts


def _line(facts: Facts, check: str) -> checklist.CheckResult:
    return next(r for r in checklist.run_checks(facts) if r.id == check)


def _on(facts: Facts, image: str) -> Facts:
    return dataclasses.replace(facts, images={**facts.images, "staging": image})


def _db_with_results(tmp_path, **by_job: str):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=20, fail_every=1_000)  # every job completed
    conn = sqlite3.connect(db)
    with conn:
        for job, results in by_job.items():
            conn.execute("UPDATE jobs SET results_json = ? WHERE id = ?", (results, job))
    conn.close()
    return db


def test_an_older_images_imageless_job_leaves_the_pinned_images_line_green(healthy, tmp_path):  # noqa: F811
    # job 4 ran on OLD_TAG (even jobs) and completed without images; STAGING pins NEW_TAG. Before: FAIL
    # "1 completed jobs without images" for a job of an image no longer served.
    db = _db_with_results(tmp_path, **{"job-0000004": "[]"})
    facts = dataclasses.replace(healthy, jobs=read_job_facts(db))
    line = _line(facts, "all_jobs_images")
    assert line.status == checklist.PASS, line.evidence
    back = _line(_on(facts, OLD_TAG), "all_jobs_images")
    assert back.status == checklist.FAIL
    assert f"1 completed jobs of {OLD_TAG} without images" in back.evidence


def test_a_bad_result_of_the_pinned_image_is_named_however_many_an_older_image_stored(healthy, tmp_path):  # noqa: F811
    # 20 bad results of the older image, then one of the pinned image's (job 19, the newest). Before: the first
    # 20 bad rows were all OLD_TAG's, and the line named none of the pinned image's; with OLD_TAG's jobs fixed,
    # the line still judged them.
    bad = '[{"key": "results/x/0.txt", "content_type": "text/plain", "bytes": 5}]'
    empty = json.dumps([{"key": f"results/y/{k}.png", "content_type": "image/png", "bytes": 0} for k in range(3)])
    many = {f"job-{n:07d}": empty for n in range(2, 20, 2)}  # 27 bad results of OLD_TAG's jobs
    db = _db_with_results(tmp_path, **many, **{"job-0000019": bad})
    facts = dataclasses.replace(healthy, jobs=read_job_facts(db))
    line = _line(facts, "size_content_type")
    assert line.status == checklist.FAIL
    assert 'job-0000019: results/x/0.txt content_type="text/plain"' in line.evidence
    assert "job-0000002" not in line.evidence

    fixed = _db_with_results(tmp_path / "fixed", **many)
    green = _line(dataclasses.replace(healthy, jobs=read_job_facts(fixed)), "size_content_type")
    assert green.status == checklist.PASS, green.evidence
    assert f"every stored result of {NEW_TAG} is image/*" in green.evidence


def test_a_golden_mean_of_true_is_not_a_latency(healthy):  # noqa: F811
    golden = {**healthy.golden, "latency_s": {**(healthy.golden.get("latency_s") or {}), "mean": True}}
    line = _line(dataclasses.replace(healthy, golden=golden), "golden_latency")
    assert line.status == checklist.FAIL, line.evidence
    assert "mean latency (True) is not a number of seconds" in line.evidence
