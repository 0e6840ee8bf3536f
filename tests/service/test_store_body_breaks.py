"""The result store breaking off mid-body (its connection drops after the object's headers): where the service
has not answered yet, the client gets 503 store_unavailable to retry and nothing changes; where the 200 is
already on its way, the download ends visibly cut, never looking complete, and one error line names it.
Real SQLite, real botocore over HTTP against a store that breaks off (breaking_s3.py), uvicorn for the
download."""

from __future__ import annotations

import json

import httpx
import pytest
from breaking_s3 import BrokenObject, breaking_s3, store_at
from service_testkit import API_TOKEN, LocalServer, check_log_lines
from test_recover_unrecorded_runpod_id import _recover, _unrecorded

IMAGE = b"\x89PNG" + bytes(range(256)) * 1000  # 256 KB: several of the store's 64 KB chunks


def _outcome(job_id: str, rid: str) -> bytes:
    image = {"key": f"results/{job_id}/0.png", "content_type": "image/png", "bytes": len(IMAGE)}
    return json.dumps({"runpod_job_id": rid, "output": {"images": [image], "pad": "x" * 200_000}}).encode()


def _events(log_lines, event: str) -> list[dict]:
    return [line for line in map(json.loads, log_lines) if line["event"] == event]


@pytest.mark.parametrize("runpod", ["forgot the job", "never had its id recorded"])
def test_a_recovery_whose_stored_outcome_breaks_off_mid_read_is_503_store_unavailable_and_changes_nothing(
        svc, log_lines, runpod):
    if runpod == "forgot the job":
        job_id = svc.create()["job_id"]
        rid = svc.runpod_id(job_id)
        del svc.fake.jobs[rid]
    else:
        job_id, rid = _unrecorded(svc, log_lines)
    before = svc.job(job_id)
    outcome = BrokenObject(_outcome(job_id, rid), "application/json", cut_after=100_000)
    with breaking_s3({f"results/{job_id}/outcome.json": outcome}) as endpoint:
        svc.app.store = store_at(endpoint)
        status, body, headers = _recover(svc, job_id)

    assert status == 503 and body["error"]["code"] == "store_unavailable", body
    assert headers["retry-after"] == "5"
    assert "broke off after" in body["error"]["message"] and "retry later" in body["error"]["message"]
    assert svc.job(job_id) == before
    assert svc.rows("SELECT * FROM webhook_deliveries") == [] and svc.rows("SELECT * FROM job_metrics") == []
    assert not _events(log_lines, "http.unhandled")


def test_a_download_whose_store_breaks_off_before_the_first_byte_is_503_store_unavailable(svc, log_lines):
    key = f"results/{'a' * 32}/0.png"
    with breaking_s3({key: BrokenObject(IMAGE, "image/png", cut_after=0)}) as endpoint:
        svc.app.store = store_at(endpoint)
        status, body, headers = svc.call("GET", f"/api/result/{key}")

    assert status == 503 and body["error"]["code"] == "store_unavailable", body
    assert headers["retry-after"] == "5"
    [refused] = _events(log_lines, "result.refused")
    assert refused["level"] == "error" and refused["http"]["status"] == 503


def test_a_download_cut_mid_body_never_looks_complete_to_the_client_and_one_error_line_names_it(
        tmp_path, moto_endpoint, fake_runpod):
    key = f"results/{'b' * 32}/0.png"
    with breaking_s3({key: BrokenObject(IMAGE, "image/png", cut_after=100_000)}) as endpoint:
        server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base, s3_endpoint_url=endpoint).start()
        try:
            received = bytearray()
            with httpx.Client(timeout=30) as client, client.stream(
                    "GET", f"{server.url}/api/result/{key}", headers={"authorization": f"Bearer {API_TOKEN}"}) as reply:
                assert reply.status_code == 200 and reply.headers["content-length"] == str(len(IMAGE))
                with pytest.raises(httpx.RemoteProtocolError):  # the connection ends short of Content-Length
                    for chunk in reply.iter_raw():
                        received += chunk
            assert 0 < len(received) < len(IMAGE)
        finally:
            server.stop()
    lines = server.log_lines()
    check_log_lines(lines)
    named = [line for line in map(json.loads, lines) if line["level"] == "error" and key in json.dumps(line)]
    assert [(line["event"], line.get("reason")) for line in named] == [("result.refused", "store_unavailable")]
    assert "broke off after" in named[0]["message"]
