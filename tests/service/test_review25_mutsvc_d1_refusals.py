"""What the Worker's GET /healthz reports of D1's refused writes (service/cloudflare_entry.py, D1Database). It
reports the last write D1 refused until a write is taken again; a read is no write: a metrics report (its
queries go to D1 in one batch, as a webhook's writes do) says nothing of whether D1 takes writes, so it must
neither clear the refusal nor, when it fails, stand for one. A batch of writes taken (a webhook's) clears it."""

from __future__ import annotations

from service_testkit import API_TOKEN
from test_review18_full_d1 import CREATE, Worker, _fill, _lines
from test_review24_dbwrite_health import entry  # noqa: F401 -- the Worker's entry, a pytest fixture
from test_service_cloudflare_entry import make_env

AUTH = {"authorization": f"Bearer {API_TOKEN}"}



def test_a_metrics_report_read_while_d1_is_full_does_not_clear_healthz(entry, tmp_path, fake_runpod, capsys,  # noqa: F811
                                                                       log_lines):
    env = make_env(tmp_path, fake_runpod.base)
    worker = Worker(entry, env)
    _fill(env.DB)
    assert worker.call("POST", "/api/queue/create", CREATE, AUTH)[0] == 503
    assert worker.call("GET", "/healthz")[0] == 503

    status, report, _ = worker.call("GET", "/api/metrics", headers=AUTH)
    assert status == 200, report
    status, body, _ = worker.call("GET", "/healthz")
    assert (status, body["error"]["code"]) == (503, "database_unavailable"), body
    assert "(storage_full)" in body["error"]["message"], body
    _lines(capsys, log_lines)  # schema-checked and scanned for secrets at teardown


def test_a_webhook_taken_once_d1_has_room_again_clears_healthz(entry, tmp_path, fake_runpod, capsys, log_lines):  # noqa: F811
    """RunPod's retry of a refused webhook is the first write taken (in one batch): /healthz is 200 again, with
    no create needed to clear it."""
    env = make_env(tmp_path, fake_runpod.base)
    worker = Worker(entry, env)
    job_id = worker.call("POST", "/api/queue/create", CREATE, AUTH)[1]["job_id"]
    runpod_id = worker.call("GET", f"/api/status/{job_id}", headers=AUTH)[1]["runpod_job_id"]
    failed = {"id": runpod_id, "status": "FAILED", "error": "out of memory"}
    _fill(env.DB)
    status, body, _ = worker.deliver(job_id, failed)
    assert (status, body["error"]["code"]) == (503, "storage_full"), body
    assert worker.call("GET", "/healthz")[0] == 503

    env.DB.conn.execute("PRAGMA max_page_count = 1073741823")
    status, body, _ = worker.deliver(job_id, failed)  # RunPod's retry
    assert status == 200 and body["status"] == "failed", body
    status, body, _ = worker.call("GET", "/healthz")
    assert status == 200, body
    _lines(capsys, log_lines)
