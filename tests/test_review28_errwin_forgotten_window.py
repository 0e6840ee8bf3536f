"""Jobs a host restart left in flight, recovered as RunPod answers for them ("RunPod has no record of job ..."), keep
the image's tag (docs/INTERFACES.md) and count against its error rate (review 28, the on-call rehearsal). The
checklist's `error_rate` line then failed on STAGING and on PROD, and `promote --check` failed `error_rate`, each with
no way out. Each now names the one there is: on STAGING a deploy of the same image and a golden run open a new window;
on PROD a promotion of the image it runs does. Following that advice turns the lines green."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

from checklist_support import checklist_checks, released_locally

from goldgate.cli import main
from service.jobs import iso_ms

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, runpod_job_id, "
        "worker_image_tag, created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) "
        "VALUES (?, ?, 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', '{}', ?, 'in_progress', ?, ?, ?, ?, ?, 3600000, 10000)")


def _forgotten_jobs(platform, stack: str, image: str, n: int) -> list[str]:
    """`n` jobs of `image` in flight on `stack` whose RunPod job the stack's RunPod no longer knows (a host restarted
    under them), in the stack's own database; their ids."""
    ids, now = [uuid.uuid4().hex for _ in range(n)], time.time()
    with sqlite3.connect(platform.db_path(stack)) as conn:
        for job_id in ids:
            conn.execute(_JOB, (job_id, stack, job_id, f"gone-{job_id}", image, iso_ms(now), int(now * 1000),
                                iso_ms(now)))
    conn.close()
    return ids


def _recover(home, stack: str, ids: list[str], capsys) -> None:
    for job_id in ids:
        capsys.readouterr()
        assert main(["recover", job_id, "--stack", stack, "--home", str(home)]) == 0
        assert "RunPod has no record of job" in capsys.readouterr().out


def test_a_forgotten_jobs_error_rate_names_the_new_window_that_clears_it(tmp_path, capsys):
    with released_locally(tmp_path) as (home, reports, platform):
        image = platform.pinned_image("staging")
        assert platform.pinned_image("prod") == image
        where = ["--home", str(home), "--reports-dir", str(reports)]

        _recover(home, "staging", _forgotten_jobs(platform, "staging", image, 6), capsys)
        line = checklist_checks(capsys, "staging", home, reports)["error_rate"]
        assert line["status"] == "fail", line
        # before: "error rate ...% exceeds 5.00% over N jobs of ... since deploy #2 ..." and nothing after it
        assert "6 of the failed jobs were recovered as forgotten by RunPod" in line["evidence"], line
        assert f"`goldgate deploy staging --image {image}`, then `goldgate golden staging`" in line["evidence"]
        capsys.readouterr()
        assert main(["promote", "--check", "--json", *where]) == 1
        failed = {c["name"]: c["detail"] for c in json.loads(capsys.readouterr().out)["conditions"]
                  if not c["passed"]}
        assert list(failed) == ["error_rate"], failed
        assert f"`goldgate deploy staging --image {image}`, then `goldgate golden staging`" in failed["error_rate"]

        # the advice, followed: a new window, and the line is green
        assert main(["deploy", "staging", "--image", image, "--home", str(home)]) == 0
        assert main(["golden", "staging", *where]) == 0
        assert checklist_checks(capsys, "staging", home, reports)["error_rate"]["status"] == "pass"

        _recover(home, "prod", _forgotten_jobs(platform, "prod", image, 6), capsys)
        checks = checklist_checks(capsys, "prod", home, reports)
        line = checks["error_rate"]
        assert line["status"] == "fail", line
        assert f"`goldgate promote --image {image}`" in line["evidence"], line
        # the jobs line that failed beside it names the same way out
        assert checks["all_jobs_images"]["status"] == "fail", checks["all_jobs_images"]
        assert f"`goldgate promote --image {image}`" in checks["all_jobs_images"]["evidence"]
        # a promotion of the image PROD runs is let through, and opens PROD's new window
        capsys.readouterr()
        assert main(["promote", "--image", image, *where]) == 0, capsys.readouterr()
        checks = checklist_checks(capsys, "prod", home, reports)
        assert checks["error_rate"]["status"] == "pass", checks["error_rate"]
        assert checks["all_jobs_images"]["status"] == "pass", checks["all_jobs_images"]
