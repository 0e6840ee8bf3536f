"""A create retried with its Idempotency-Key while the input image store cannot be asked (an R2 outage) is answered
the job the first create made, as any replay: that job's image was checked when it was taken, and the client
learns its job id instead of a 503 for a job that exists. A create that made no job still gets the 503."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_runpod_plane import FakeRunPod
from PIL import Image
from service_testkit import BUCKET, RUNPOD_KEY, WORKFLOWS, Harness, make_config
from test_review32_inputsvc_uploads import IMG2IMG

from service.app import create_app
from service.httpx_transport import HttpxTransport
from service.ports import StoreUnavailable
from service.runpod import HttpRunPodGateway
from service.s3_store import S3ResultStore
from service.sqlite_database import SqliteDatabase


@pytest.fixture
def svc(tmp_path: Path, db_path: Path, moto_endpoint: str, fake_runpod: FakeRunPod, log_lines: Any, s3: Any,
        _store_client: Any) -> Iterator[Harness]:
    workflows = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, workflows)
    (workflows / "img2img.json").write_text(json.dumps(IMG2IMG))
    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(db_path), s3_endpoint_url=moto_endpoint,
                         workflows_dir=str(workflows))
    db = SqliteDatabase(db_path)
    transport = HttpxTransport()
    gateway = HttpRunPodGateway(transport, fake_runpod.base, RUNPOD_KEY, timeout_s=5)
    app = create_app(config, db, S3ResultStore(_store_client, BUCKET), gateway, log_sink=log_lines.sink)
    harness = Harness(app, db, s3, fake_runpod, [0.0])
    yield harness
    harness.run(transport.aclose())
    harness.loop.close()
    db.close()


def _create(svc: Harness, key: str, prompt: str, idempotency_key: str) -> tuple[int, Any, dict[str, str]]:
    return svc.call("POST", "/api/queue/create", {"workflow_id": "img2img", "inputs": {"prompt": prompt, "image": key}},
                    headers={"idempotency-key": idempotency_key})


def test_a_create_retried_during_a_store_outage_is_answered_its_job_and_a_new_one_a_503(
        svc: Harness, log_lines: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(out, "PNG")
    status, upload, _ = svc.call("POST", "/api/inputs", raw=out.getvalue(), headers={"content-type": "image/png"})
    assert status == 201, upload
    status, first, _ = _create(svc, upload["key"], "a lighthouse", "k-outage")
    assert status == 202, first

    async def unreachable(key: str) -> None:
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(svc.app.store, "head", unreachable)
    before = len(log_lines)
    status, again, headers = _create(svc, upload["key"], "a lighthouse", "k-outage")
    assert status == 202 and again["job_id"] == first["job_id"], again
    assert headers["idempotent-replayed"] == "true" and len(svc.fake.runs) == 1
    assert not any(json.loads(line)["event"] == "job.create_failed" for line in log_lines[before:])  # nothing failed

    status, other, headers = _create(svc, upload["key"], "a lighthouse", "k-another")
    assert status == 503 and other["error"]["code"] == "store_unavailable", other
    assert "retry later" in other["error"]["message"] and len(svc.fake.runs) == 1
    failed = [json.loads(line) for line in log_lines[before:] if json.loads(line)["event"] == "job.create_failed"]
    assert len(failed) == 1 and failed[0]["level"] == "error", failed
