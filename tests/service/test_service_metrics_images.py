"""Images per job in job_metrics: written by the transition that ends the job, so the cost per 1,000 images
of `goldgate metrics` stays right after `goldgate prune` deletes old jobs but keeps their metrics."""

from __future__ import annotations

from goldgate.ops.metrics_report import report_from_sqlite
from service.retention import Cutoffs, missing_tables, prune

DAY_S = 86_400


def _images(svc, job_id):
    return svc.rows("SELECT images FROM job_metrics WHERE job_id = ?", (job_id,))


def _complete(svc, job_id, count):
    images = [svc.put_result(job_id, f"{i}.png") for i in range(count)]
    status, body, _ = svc.deliver(job_id, svc.completed(job_id, images, execution_ms=2000 + 1000 * count))
    assert (status, body["status"]) == (200, "completed"), body


def _fail(svc, job_id):
    payload = {"id": svc.runpod_id(job_id), "status": "FAILED", "delayTime": 50, "executionTime": 1500,
               "error": "out of memory"}
    status, body, _ = svc.deliver(job_id, payload)
    assert (status, body["status"]) == (200, "failed"), body


def _per_image(report):
    groups = [report["overall"], *report["by_worker_image_tag"]]
    return [(g["images"], g["cost_per_1000_images_usd"]) for g in groups]


def test_cost_per_1000_images_is_the_same_after_old_jobs_are_pruned_and_their_metrics_kept(svc, db_path):
    old = [svc.create(f"old {i}")["job_id"] for i in range(3)]
    svc.clock[0] += 5
    _complete(svc, old[0], 3)
    _complete(svc, old[1], 1)
    _fail(svc, old[2])
    svc.clock[0] += 40 * DAY_S
    new = [svc.create(f"new {i}")["job_id"] for i in range(2)]
    svc.clock[0] += 5
    _complete(svc, new[0], 2)
    _fail(svc, new[1])
    before = report_from_sqlite(db_path, "test")
    assert before["overall"]["images"] == 6 and before["overall"]["cost_per_1000_images_usd"] is not None

    pruned = svc.run(prune(svc.db, Cutoffs.at(svc.clock[0], keep_days=30, metrics_keep_days=None)))

    assert pruned.deleted["jobs"] == 3 and pruned.remaining["job_metrics"] == 5
    assert svc.rows("SELECT id FROM jobs ORDER BY id") == [{"id": j} for j in sorted(new)]
    after = report_from_sqlite(db_path, "test")
    assert _per_image(after) == _per_image(before)  # the same sums: equal, not just close


def test_the_metrics_row_counts_the_images_the_job_recorded_and_none_for_a_failure(svc):
    completed, failed, rejected = (svc.create(p)["job_id"] for p in ("a", "b", "c"))
    _complete(svc, completed, 4)
    _fail(svc, failed)
    missing = {"key": f"results/{rejected}/0.png", "content_type": "image/png", "bytes": 10}
    status, body, _ = svc.deliver(rejected, svc.completed(rejected, [missing]))  # never uploaded: result rejected
    assert (status, body["status"]) == (200, "failed")
    assert [_images(svc, j) for j in (completed, failed, rejected)] == [[{"images": 4}], [{"images": 0}],
                                                                       [{"images": 0}]]


def test_a_completed_retry_after_a_failure_replaces_the_image_count_and_duplicates_change_nothing(svc):
    job_id = svc.create()["job_id"]
    _fail(svc, job_id)
    assert _images(svc, job_id) == [{"images": 0}]
    images = [svc.put_result(job_id, f"{i}.png") for i in range(2)]
    payload = svc.completed(job_id, images)
    assert svc.deliver(job_id, payload)[1]["reason"] == "applied"
    assert svc.deliver(job_id, payload)[1]["reason"] == "duplicate"
    assert svc.rows("SELECT status, images FROM job_metrics") == [{"status": "completed", "images": 2}]


def test_runpods_outcome_replacing_a_failed_submission_records_its_images(svc):
    svc.fake.run_mode = "error"  # /run fails: the job is marked failed with no RunPod id
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
    assert status == 503
    job_id = body["error"]["job_id"]
    image = svc.put_result(job_id)
    payload = {"id": "rp-taken-after-all", "status": "COMPLETED", "delayTime": 100, "executionTime": 2000,
               "output": {"images": [image, svc.put_result(job_id, "1.png")]}}
    assert svc.deliver(job_id, payload)[1]["reason"] == "applied"
    assert svc.rows("SELECT status, images FROM job_metrics") == [{"status": "completed", "images": 2}]


def test_prune_keeps_the_image_count_of_a_job_whose_metrics_row_predates_the_images_column(svc, db_path):
    """A metrics row written before migration 0003 has no image count: prune takes it from the job it deletes."""
    old = [svc.create(f"old {i}")["job_id"] for i in range(2)]
    svc.clock[0] += 5
    _complete(svc, old[0], 3)
    _fail(svc, old[1])
    svc.run(svc.db.execute("UPDATE job_metrics SET images = NULL"))  # as an older service wrote them
    svc.clock[0] += 40 * DAY_S
    before = report_from_sqlite(db_path, "test")

    svc.run(prune(svc.db, Cutoffs.at(svc.clock[0], keep_days=30, metrics_keep_days=None)))

    assert svc.rows("SELECT id FROM jobs") == []
    assert sorted(r["images"] for r in svc.rows("SELECT images FROM job_metrics")) == [0, 3]
    assert _per_image(report_from_sqlite(db_path, "test")) == _per_image(before)


def test_a_database_without_the_images_column_is_named_as_not_migrated_before_prune_deletes_anything(svc):
    svc.run(svc.db.execute("ALTER TABLE job_metrics DROP COLUMN images"))
    assert svc.run(missing_tables(svc.db)) == ["job_metrics.images"]
