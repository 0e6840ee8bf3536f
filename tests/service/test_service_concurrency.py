"""Concurrency: 2,000 distinct webhook deliveries for 500 jobs, each sent 3 times, shuffled, from 8
threads, some stale and some for the wrong attempt, against the local server as a real process."""

from __future__ import annotations

import random
import socket
import sqlite3
import threading

import httpx
from service_testkit import API_TOKEN, BUCKET, WEBHOOK_SECRET, s3_client

from service.signing import webhook_signature

JOBS = 500
THREADS = 8


def nodelay_client(base_url: str, **kwargs) -> httpx.Client:
    # httpx writes headers and body separately: without TCP_NODELAY each POST waits ~40 ms
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(base_url=base_url, transport=transport, **kwargs)


def _plan(job_id: str, rid: str, kind: int, image: dict) -> tuple[str, list[dict]]:
    """(expected final status, the job's 4 distinct deliveries)."""
    progress = {"id": rid, "status": "IN_PROGRESS", "delayTime": 40}
    queued = {"id": rid, "status": "IN_QUEUE"}
    completed = {"id": rid, "status": "COMPLETED", "delayTime": 40, "executionTime": 1800,
                 "output": {"images": [image], "gpu_type": "NVIDIA L4"}}
    failed = {"id": rid, "status": "FAILED", "delayTime": 40, "executionTime": 700, "error": "out of memory"}
    wrong_attempt = {"id": rid + "-other", "status": "FAILED", "executionTime": 1, "error": "not ours"}
    if kind in (0, 1):
        return "completed", [progress, completed, queued, wrong_attempt]
    if kind == 2:
        return "failed", [progress, failed, queued, wrong_attempt]
    if kind == 3:  # failed, then RunPod /retry of the same id completed: completed wins in any order
        return "completed", [failed, completed, progress, queued]
    return "timed_out", [progress, {"id": rid, "status": "TIMED_OUT", "delayTime": 40, "executionTime": 600000},
                         queued, {**wrong_attempt, "status": "COMPLETED"}]


def test_thousands_of_repeated_shuffled_deliveries_settle_every_job_exactly_once(local_server, moto_endpoint):
    s3 = s3_client(moto_endpoint)
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    with nodelay_client(local_server.url, headers=auth, timeout=30) as client:
        job_ids = [client.post("/api/queue/create", json={"workflow_id": "flux-schnell",
                                                          "inputs": {"prompt": f"job {i}"}}).json()["job_id"]
                   for i in range(JOBS)]
    db = sqlite3.connect(local_server.db_path)
    rids = dict(db.execute("SELECT id, runpod_job_id FROM jobs"))
    expected: dict[str, str] = {}
    sends: list[tuple[str, dict]] = []
    for i, job_id in enumerate(job_ids):
        key = f"results/{job_id}/0.png"
        image = {"key": key, "content_type": "image/png", "bytes": 12}
        if i % 5 in (0, 1, 3):
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x89PNG1234abcd", ContentType="image/png")
        expected[job_id], deliveries = _plan(job_id, rids[job_id], i % 5, image)
        sends.extend((job_id, d) for d in deliveries for _ in range(3))
    assert len(sends) == JOBS * 4 * 3
    random.Random(7).shuffle(sends)

    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def worker(chunk: list[tuple[str, dict]]) -> None:
        got = []
        with nodelay_client(local_server.url, timeout=60) as client:
            for job_id, payload in chunk:
                reply = client.post("/api/runpod/webhook", json=payload,
                                    params={"job": job_id, "sig": webhook_signature(WEBHOOK_SECRET, job_id)})
                got.append((reply.status_code, reply.json()))
        with lock:
            answers.extend(got)

    threads = [threading.Thread(target=worker, args=(sends[n::THREADS],)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(answers) == len(sends)
    assert {code for code, _ in answers} == {200}, [a for a in answers if a[0] != 200][:3]
    final = dict(db.execute("SELECT id, status FROM jobs"))
    wrong = {j: (final[j], expected[j]) for j in job_ids if final[j] != expected[j]}
    assert not wrong, list(wrong.items())[:5]
    metrics = {job_id: (status, images) for job_id, status, images
               in db.execute("SELECT job_id, status, images FROM job_metrics")}
    # exactly one row per terminal job, with its final status and its images (one per completed job)
    assert metrics == {job_id: (status, int(status == "completed")) for job_id, status in expected.items()}
    # every distinct delivery recorded once; every other copy answered as a duplicate
    assert db.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone()[0] == JOBS * 4
    reasons = [body["reason"] for _, body in answers]
    assert reasons.count("duplicate") == JOBS * 4 * 2
    assert reasons.count("runpod_id_mismatch") == 400
    applied = db.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE applied = 1").fetchone()[0]
    assert applied == reasons.count("applied")
    db.close()
