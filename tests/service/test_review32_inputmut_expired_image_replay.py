"""Mutation audit of the replay a create gets when its input image expired since the first create with the same
Idempotency-Key (service/routes.py create_job, service/idempotency.py held): only that very request, within the
key's window, is answered the first job; another body, or the same one a day later, is a new request and refused."""

from __future__ import annotations

import hashlib
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
from service.idempotency import WINDOW_S
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
    clock = [1_800_000_000.0]
    app = create_app(config, db, S3ResultStore(_store_client, BUCKET), gateway, log_sink=log_lines.sink,
                     clock=lambda: clock[0])
    harness = Harness(app, db, s3, fake_runpod, clock)
    yield harness
    harness.run(transport.aclose())
    harness.loop.close()
    db.close()


def _uploaded(svc: Harness) -> str:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(out, "PNG")
    status, body, _ = svc.call("POST", "/api/inputs", raw=out.getvalue(), headers={"content-type": "image/png"})
    assert status == 201, body
    assert body["sha256"] == hashlib.sha256(out.getvalue()).hexdigest()
    return body["key"]


def _create(svc: Harness, key: str, prompt: str, idempotency_key: str) -> tuple[int, Any, dict[str, str]]:
    return svc.call("POST", "/api/queue/create", {"workflow_id": "img2img", "inputs": {"prompt": prompt, "image": key}},
                    headers={"idempotency-key": idempotency_key})


def test_a_retry_with_the_same_key_but_another_body_after_the_image_expired_is_not_answered_the_first_job(
        svc: Harness) -> None:
    key = _uploaded(svc)
    status, first, _ = _create(svc, key, "a lighthouse", "k-body")
    assert status == 202, first
    svc.s3.delete_object(Bucket=BUCKET, Key=key)  # the retention rule ran
    status, again, headers = _create(svc, key, "a lighthouse at night", "k-body")
    assert status == 400 and again["error"]["code"] == "input_image_missing", again
    assert "idempotent-replayed" not in headers and len(svc.fake.runs) == 1


def test_a_retry_with_the_same_key_and_body_a_day_later_is_a_new_request_refused_for_its_expired_image(
        svc: Harness) -> None:
    key = _uploaded(svc)
    status, first, _ = _create(svc, key, "a lighthouse", "k-day")
    assert status == 202, first
    svc.s3.delete_object(Bucket=BUCKET, Key=key)
    svc.clock[0] += WINDOW_S - 1  # within the window: the first job, as any replay
    status, again, headers = _create(svc, key, "a lighthouse", "k-day")
    assert status == 202 and again["job_id"] == first["job_id"] and headers["idempotent-replayed"] == "true"
    svc.clock[0] += 1  # at its end, where a create would claim the key anew: a new request, and the image is gone
    status, late, headers = _create(svc, key, "a lighthouse", "k-day")
    assert status == 400 and late["error"]["code"] == "input_image_missing", late
    assert "idempotent-replayed" not in headers and len(svc.fake.runs) == 1
