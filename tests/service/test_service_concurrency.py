"""Concurrency: 2,000 distinct webhook deliveries for 500 jobs, each sent 3 times, shuffled, from 8
threads, some stale and some for the wrong attempt, against the local server as a real process."""

from __future__ import annotations

import http.client
import json
import random
import select
import socket
import sqlite3
import threading

from service_testkit import API_TOKEN, BUCKET, WEBHOOK_SECRET, s3_client

from service.signing import webhook_signature

JOBS = 500
THREADS = 8


class KeepAlive:
    """One keep-alive HTTP/1.1 connection over http.client, a fraction of httpx's CPU per request (6,500 of
    them here): the server sees the same requests. The body goes out in the headers' write (http.client joins
    them) and TCP_NODELAY is set too. A connection the server closed while idle is reopened before a request
    is sent (as httpx's pool does), never after: no delivery is ever sent twice by the client."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"content-type": "application/json", **(headers or {})}

    def post(self, path: str, payload: dict) -> tuple[int, dict]:
        sock = self.conn.sock
        if sock is not None and select.select([sock], [], [], 0)[0]:  # readable while idle: server closed it
            self.conn.close()
        if self.conn.sock is None:
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn.request("POST", path, body=json.dumps(payload).encode(), headers=self.headers)
        reply = self.conn.getresponse()
        return reply.status, json.loads(reply.read())

    def close(self) -> None:
        self.conn.close()


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
    client = KeepAlive(local_server.port, auth)
    created = [client.post("/api/queue/create", {"workflow_id": "flux-schnell",
                                                 "inputs": {"prompt": f"job {i}"}}) for i in range(JOBS)]
    client.close()
    assert {status for status, _ in created} == {202}
    job_ids = [body["job_id"] for _, body in created]
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
        client = KeepAlive(local_server.port)
        for job_id, payload in chunk:
            sig = webhook_signature(WEBHOOK_SECRET, job_id)
            got.append(client.post(f"/api/runpod/webhook?job={job_id}&sig={sig}", payload))
        client.close()
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
