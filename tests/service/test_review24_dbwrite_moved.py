"""The database file deleted or replaced under the running local server (an `rm` of the stack's home, a backup
copied over it by hand). Its connection went on writing to the old file, which nothing opens again: creates
were answered 202 and sent to RunPod, webhooks 200, and every one of those writes was lost at the next start
(with the old WAL left beside whatever file came next). Now each write is refused whole, 503
`database_unavailable`, until the service is restarted; GET /healthz says so. Driven on the real
`python -m service.local_server`."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import httpx
import pytest
from service_testkit import API_TOKEN, WEBHOOK_SECRET, LocalServer

from service.signing import webhook_signature

AUTH = {"authorization": f"Bearer {API_TOKEN}"}
CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


def _delete(path: Path) -> None:
    os.unlink(path)


def _replace(path: Path) -> None:
    """A copy of the database put in its place, as `cp backup.sqlite service.sqlite` would."""
    copy = path.with_name("copy.sqlite")
    src, dst = sqlite3.connect(path), sqlite3.connect(copy)
    src.backup(dst)
    dst.close()
    src.close()
    os.replace(copy, path)


@pytest.mark.parametrize("move", [_delete, _replace], ids=["deleted", "replaced"])
def test_writes_after_the_database_file_was_moved_are_refused_and_nothing_reaches_runpod(local_server: LocalServer,
                                                                                        fake_runpod, move):
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        created = client.post("/api/queue/create", json=CREATE, headers=AUTH)
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        runpod_id = client.get(f"/api/status/{job_id}", headers=AUTH).json()["runpod_job_id"]
        move(local_server.db_path)
        seen = len(local_server.log_lines())

        refused = client.post("/api/queue/create", json=CREATE, headers=AUTH)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "database_unavailable", refused.text
        assert refused.headers["retry-after"] == "60"
        assert len(fake_runpod.runs) == 1, "RunPod ran a job written only to a file no one will open again"

        failed = {"id": runpod_id, "status": "FAILED", "error": "out of memory"}
        sig = webhook_signature(WEBHOOK_SECRET, job_id)
        hook = client.post(f"/api/runpod/webhook?job={job_id}&sig={sig}", json=failed)
        assert hook.status_code == 503 and hook.json()["error"]["code"] == "database_unavailable", hook.text

        health = client.get("/healthz")
        assert health.status_code == 503, health.text
        assert "(database_unavailable)" in health.json()["error"]["message"], health.text
        status = client.get(f"/api/status/{job_id}", headers=AUTH)  # reads go on, from the file it has open
        assert status.status_code == 200 and status.json()["status"] == "queued", status.text

    lines = [json.loads(line) for line in local_server.log_lines()[seen:]]
    gone = [line for line in lines if line["event"] == "database.gone"]
    assert [(line["level"], line["http"]["path"], line["http"]["status"]) for line in gone] == [
        ("critical", "/api/queue/create", 503), ("critical", "/api/runpod/webhook", 503)], gone
    assert gone[1]["job_id"] == job_id
    assert "was deleted or replaced" in gone[0]["error"]["message"]
