"""Recovering a job whose RunPod id was never recorded: RunPod took it, recording its id failed (the
`job.runpod_id_unrecorded` line keeps the id), and its webhook was lost too. The operator names the id from that
line; the service checks RunPod's answer can be this job's before it adopts it. Real SQLite, moto S3, a fake
RunPod data plane; the CLI test runs the real local server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_testkit import API_TOKEN, LosesTheRunPodIdWrite

from goldgate.cli import main
from goldgate.local.state import StackDir, write_json_atomic, write_private

CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


def _unrecorded(svc, log_lines) -> tuple[str, str]:
    """A job RunPod took whose id was not recorded: (job id, the RunPod id its log line carries)."""
    svc.app.db = LosesTheRunPodIdWrite(svc.db)
    status, body, _ = svc.call("POST", "/api/queue/create", CREATE)
    svc.app.db = svc.db
    assert status == 202, body
    [line] = [json.loads(line) for line in log_lines if json.loads(line)["event"] == "job.runpod_id_unrecorded"]
    assert svc.job(body["job_id"])["runpod_job_id"] is None
    return body["job_id"], line["runpod_job_id"]


def _recover(svc, job_id: str, body=None, raw: bytes | None = None):
    return svc.call("POST", f"/api/admin/recover/{job_id}", body, raw=raw)


def _completed(svc, rid: str, job_id: str) -> dict:
    return {"id": rid, "status": "COMPLETED", "delayTime": 5, "executionTime": 900,
            "output": {"images": [svc.put_result(job_id)], "timings": {"total_ms": 900}}}


def test_a_job_whose_runpod_id_was_not_recorded_is_recovered_with_the_id_from_its_log_line(svc, log_lines):
    job_id, rid = _unrecorded(svc, log_lines)
    svc.fake.set_status(rid, _completed(svc, rid, job_id))
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": rid})
    assert status == 200 and body == {"applied": True, "reason": "applied", "status": "completed",
                                      "runpod_status": "COMPLETED"}
    assert svc.fake.status_calls == [rid]
    assert svc.job(job_id)["runpod_job_id"] == rid and len(svc.rows("SELECT * FROM job_metrics")) == 1
    # the same recovery again is idempotent, and the webhook that finally comes is a duplicate
    assert _recover(svc, job_id, {"runpod_job_id": rid})[1]["reason"] == "duplicate"
    assert _recover(svc, job_id)[1]["reason"] == "duplicate"
    assert svc.deliver(job_id, svc.fake.jobs[rid])[1]["reason"] == "duplicate"


def test_a_failed_answer_for_the_given_id_settles_the_job_as_failed(svc, log_lines):
    job_id, rid = _unrecorded(svc, log_lines)
    svc.fake.set_status(rid, {"id": rid, "status": "FAILED", "delayTime": 5, "executionTime": 9,
                              "error": "CUDA out of memory"})
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": rid})
    assert (status, body["status"]) == (200, "failed"), body
    row = svc.job(job_id)
    assert (row["runpod_job_id"], row["error"]) == (rid, "CUDA out of memory")


def test_without_the_id_the_409_says_where_to_find_it_not_that_runpod_never_had_the_job(svc, log_lines):
    job_id, _ = _unrecorded(svc, log_lines)
    status, body, _ = _recover(svc, job_id)
    assert status == 409 and body["error"]["code"] == "not_submitted"
    message = body["error"]["message"]
    assert "never reached RunPod" not in message
    assert "job.runpod_id_unrecorded" in message and '"runpod_job_id"' in message
    assert svc.fake.status_calls == []


def test_another_jobs_completed_runpod_id_is_refused_and_changes_nothing(svc, log_lines):
    # The other job's id is on no record either (it was lost, or the job pruned): RunPod's answer tells.
    job_id, _ = _unrecorded(svc, log_lines)
    other = svc.create()
    other_rid = svc.runpod_id(other["job_id"])
    svc.run(svc.db.execute("UPDATE jobs SET runpod_job_id = NULL WHERE id = ?", (other["job_id"],)))
    svc.fake.set_status(other_rid, _completed(svc, other_rid, other["job_id"]))
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": other_rid})
    assert status == 409 and body["error"]["code"] == "runpod_job_mismatch", body
    assert f"results/{other['job_id']}/" in body["error"]["message"]
    row = svc.job(job_id)
    assert (row["status"], row["runpod_job_id"]) == ("queued", None)
    assert svc.rows("SELECT * FROM webhook_deliveries WHERE job_id = ?", (job_id,)) == []
    assert svc.rows("SELECT * FROM job_metrics") == []


@pytest.mark.parametrize("runpod_status", ["IN_QUEUE", "IN_PROGRESS"])
def test_an_unfinished_answer_for_a_given_id_changes_nothing(svc, log_lines, runpod_status):
    # Nothing is lost by waiting (RunPod sends the webhook when the job ends), and an unfinished answer cannot
    # show that the id is this job's: it is not adopted.
    job_id, rid = _unrecorded(svc, log_lines)
    svc.fake.set_status(rid, {"id": rid, "status": runpod_status, "delayTime": 5})
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": rid})
    assert status == 409 and body["error"]["code"] == "runpod_job_unfinished", body
    assert runpod_status in body["error"]["message"]
    assert svc.job(job_id)["runpod_job_id"] is None


def test_a_given_id_runpod_does_not_know_leaves_the_job_as_it_was(svc, log_lines):
    # A recorded id RunPod forgot means its TTL expired (the job is failed); a typed one may just be wrong.
    job_id, rid = _unrecorded(svc, log_lines)
    status, body, _ = _recover(svc, job_id, {"runpod_job_id": rid + "x"})
    assert status == 409 and body["error"]["code"] == "unknown_runpod_job", body
    row = svc.job(job_id)
    assert (row["status"], row["runpod_job_id"]) == ("queued", None)


def test_a_given_id_for_a_job_with_a_recorded_one_is_refused_unless_it_is_the_same(svc):
    job = svc.create()
    rid = svc.runpod_id(job["job_id"])
    status, body, _ = _recover(svc, job["job_id"], {"runpod_job_id": "0f0f0f0f-aaaa-bbbb-cccc-000000000000-u1"})
    assert status == 409 and body["error"]["code"] == "runpod_id_recorded" and rid in body["error"]["message"]
    assert svc.fake.status_calls == []
    svc.fake.set_status(rid, {"id": rid, "status": "FAILED", "delayTime": 5, "executionTime": 9, "error": "x"})
    assert _recover(svc, job["job_id"], {"runpod_job_id": rid})[:2] == (200, {
        "applied": True, "reason": "applied", "status": "failed", "runpod_status": "FAILED"})


@pytest.mark.parametrize(("body", "code"), [
    ({"runpod_job_id": "../../purge-queue"}, "invalid_runpod_job_id"),
    ({"runpod_job_id": "a" * 129}, "invalid_runpod_job_id"),
    ({"runpod_job_id": ""}, "invalid_runpod_job_id"),
    ({"runpod_job_id": 12}, "invalid_runpod_job_id"),
    ({"runpod_job_id": "abc-u1", "force": True}, "invalid_body"),
    ({"runpod_id": "abc-u1"}, "invalid_body"),
    (["abc-u1"], "invalid_body"),
])
def test_a_malformed_recovery_body_is_a_400_that_calls_nothing(svc, log_lines, body, code):
    job_id, _ = _unrecorded(svc, log_lines)
    status, got, _ = _recover(svc, job_id, body)
    assert status == 400 and got["error"]["code"] == code, got
    assert "runpod_job_id" in got["error"]["message"]
    assert svc.fake.status_calls == [] and svc.job(job_id)["runpod_job_id"] is None


def test_an_oversized_recovery_body_is_a_413(svc, log_lines):
    job_id, _ = _unrecorded(svc, log_lines)
    status, got, _ = _recover(svc, job_id, raw=b'{"runpod_job_id": "' + b"a" * (2 << 20) + b'"}')
    assert status == 413 and got["error"]["code"] == "body_too_large"
    assert svc.fake.status_calls == []


@pytest.fixture
def staging_home(tmp_path, local_server) -> Iterator[Path]:
    """A state home where stack staging is up, as `goldgate up` leaves it, serving on `local_server`: its secrets
    and state file written through goldgate.local.state. The stack host is a stand-in process that only names the
    stack and home as the real one does (`goldgate.local.stackhost --stack S --home H`): a live host of that
    stack is what `goldgate recover` checks before it calls the API."""
    home = tmp_path / "home"
    stack = StackDir(home, "staging")
    stack.ensure()
    write_private(stack.secret_file("api_token"), API_TOKEN)
    host = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "goldgate.local.stackhost",
                             "--stack", "staging", "--home", str(home)], stdin=subprocess.PIPE)
    try:
        write_json_atomic(stack.state_file, {"status": "ready", "pid": host.pid, "api_url": local_server.url})
        yield home
    finally:
        host.stdin.close()  # it ends when its stdin does
        host.wait(10)


def test_goldgate_recover_takes_the_runpod_id(capsys, staging_home, local_server, fake_runpod, s3):
    from service_testkit import BUCKET

    created = httpx.post(f"{local_server.url}/api/queue/create", json=CREATE,
                         headers={"authorization": f"Bearer {API_TOKEN}"}, timeout=30)
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    conn = sqlite3.connect(local_server.db_path)  # the write of RunPod's id that D1 lost
    [(rid,)] = conn.execute("SELECT runpod_job_id FROM jobs WHERE id = ?", (job_id,)).fetchall()
    with conn:
        conn.execute("UPDATE jobs SET runpod_job_id = NULL WHERE id = ?", (job_id,))
    conn.close()
    key = f"results/{job_id}/0.png"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x89PNG", ContentType="image/png")
    fake_runpod.set_status(rid, {"id": rid, "status": "COMPLETED", "delayTime": 5, "executionTime": 9,
                                 "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 4}]}})
    home = ["--home", str(staging_home)]
    assert main(["recover", job_id, "--stack", "staging", "--json", *home]) == 1
    assert "job.runpod_id_unrecorded" in capsys.readouterr().err
    assert main(["recover", job_id, "--stack", "staging", "--runpod-job-id", rid, "--json", *home]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"
