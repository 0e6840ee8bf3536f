"""The local server as a real process: uvicorn over SQLite (WAL) and the moto S3 store, on a free port."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import subprocess
import sys
import threading

import httpx
import pytest
from service_testkit import API_TOKEN, BUCKET, ROOT, WEBHOOK_SECRET, LocalServer, check_log_lines, s3_client

from service.signing import webhook_signature

AUTH = {"authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="module")
def local_server(shared_local_server: LocalServer) -> LocalServer:
    """One server for the tests that only send it requests (service_testkit.shared_local_server); the tests of
    starting and stopping start their own."""
    return shared_local_server


def test_starts_on_a_fresh_db_with_port_0_and_serves_the_job_path(local_server, moto_endpoint):
    lines = [json.loads(line) for line in local_server.log_lines()]
    listening = [line for line in lines if line["event"] == "service.listening"]
    assert listening and listening[0]["data"]["port"] == local_server.port
    conn = sqlite3.connect(local_server.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[0] for r in conn.execute("SELECT name FROM d1_migrations")] == ["0001_init.sql",
                                                                                  "0002_idempotency_keys.sql",
                                                                                  "0003_job_metrics_images.sql",
                                                                                  "0004_retention_cursor.sql",
                                                                                  "0005_job_run_policy.sql",
                                                                                  "0006_job_metrics_covering_indexes.sql", "0007_jobs_in_flight_index.sql", "0008_delivery_source_cancel.sql",
                                                                                  "0009_daily_spend.sql", "0010_job_client.sql", "0011_client_daily_spend.sql",
                                                                                  "0012_job_list_indexes.sql"]
    with httpx.Client(base_url=local_server.url, headers=AUTH, timeout=10) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        job = client.post("/api/queue/create", json={"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}})
        assert job.status_code == 202
        job_id = job.json()["job_id"]
        rid = conn.execute("SELECT runpod_job_id FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
        data = bytes(range(256)) * 1000
        key = f"results/{job_id}/0.webp"
        s3_client(moto_endpoint).put_object(Bucket="goldgate-results", Key=key, Body=data, ContentType="image/webp")
        hook = client.post("/api/runpod/webhook", params={"job": job_id, "sig": webhook_signature(WEBHOOK_SECRET, job_id)},
                           json={"id": rid, "status": "COMPLETED", "delayTime": 5, "executionTime": 1500,
                                 "output": {"images": [{"key": key, "content_type": "image/webp",
                                                        "bytes": len(data)}]}},
                           headers={"authorization": ""})
        assert hook.json() == {"applied": True, "reason": "applied", "status": "completed"}
        status = client.get(f"/api/status/{job_id}").json()
        assert status["status"] == "completed" and status["cost_estimate_usd"] == 0.00019 * 2
        url = status["results"][0]["url"].replace("http://127.0.0.1:1", local_server.url)
        fetched = httpx.get(url, timeout=10)
        assert fetched.status_code == 200 and fetched.content == data
        assert fetched.headers["content-type"] == "image/webp"
        assert fetched.headers["content-length"] == str(len(data))
    conn.close()


def _raw(server: LocalServer, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in {**AUTH, "content-length": str(len(body)), **(headers or {})}.items():
        conn.putheader(k, v)
    conn.endheaders()
    if body:
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer 413 and close before reading everything
    reply = conn.getresponse()
    payload = reply.read()
    conn.close()
    return reply.status, json.loads(payload) if payload.startswith(b"{") else payload


def test_over_http_bad_input_gets_clear_json_errors_never_a_traceback(local_server):
    status, body = _raw(local_server, "POST", "/api/queue/create", b"x" * 2_000_000)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = _raw(local_server, "POST", "/api/queue/create", b'{"workflow_id": ')
    assert status == 400 and body["error"]["code"] == "invalid_json"
    for path in ("/api/result/..%2F..%2Fetc%2Fpasswd", "/api/result/%2e%2e/%2e%2e/service.json",
                 "/api/result/results/%2e%2e%2f%2e%2e%2fx.png", "/api/result/../../etc/passwd"):
        status, body = _raw(local_server, "GET", path)
        assert status == 404 and body["error"]["code"] == "not_found", path
    status, body = _raw(local_server, "PUT", "/api/metrics")
    assert status == 405
    status, body = _raw(local_server, "POST", "/api/runpod/webhook?job=" + "a" * 32 + "&sig=" + "0" * 64, b"{}")
    assert status == 401
    text = local_server.log_path.read_text()
    assert "Traceback" not in text and "sig=" not in text


def test_head_answers_as_get_would_with_its_headers_and_no_body(local_server, moto_endpoint):
    # RFC 9110 9.3.2: load balancers, uptime checks and clients learning a result's size use HEAD.
    earlier = len(local_server.log_lines())  # the shared server's lines from tests before this one
    key = f"results/{'e' * 32}/0.png"
    data = b"\x89PNG" + bytes(5000)
    s3_client(moto_endpoint).put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/png")
    for path, headers in (("/healthz", {}), (f"/api/result/{key}", AUTH),
                          (f"/api/result/results/{'e' * 32}/9.png", AUTH), (f"/api/result/{key}", {})):
        got = httpx.get(local_server.url + path, headers=headers, timeout=10)
        head = httpx.head(local_server.url + path, headers=headers, timeout=10)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content)), path
    assert got.status_code == 401 and head.headers["www-authenticate"] == "Bearer"
    refused = httpx.put(local_server.url + "/api/metrics", headers=AUTH, timeout=10)
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    heads = [json.loads(line) for line in local_server.log_lines()[earlier:] if '"method":"HEAD"' in line]
    assert [line["http"]["status"] for line in heads] == [200, 200, 404, 401]  # one schema line each


def test_a_bad_config_exits_2_naming_the_key(tmp_path, moto_endpoint, fake_runpod):
    server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base, max_body_bytes="lots")
    proc = subprocess.run([sys.executable, "-m", "service.local_server", "--config", str(server.config_path)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "max_body_bytes must be an integer" in proc.stderr
    assert "Traceback" not in proc.stderr
    check_log_lines(proc.stdout.splitlines())
    missing = subprocess.run([sys.executable, "-m", "service.local_server", "--config", str(tmp_path / "none.json")],
                             check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    unreadable = subprocess.run([sys.executable, "-m", "service.local_server", "--config", str(tmp_path)],
                                check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)  # a directory
    assert unreadable.returncode == 2 and "cannot be read" in unreadable.stderr, unreadable.stderr
    assert [json.loads(line)["event"] for line in unreadable.stdout.splitlines()] == ["service.bad_config"]


def test_a_db_path_that_cannot_be_opened_exits_2_naming_it_not_a_traceback(tmp_path, moto_endpoint, fake_runpod):
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("these are not the pages of a database\n" * 200)
    for db_path in (tmp_path / "no" / "such" / "dir" / "service.sqlite", not_sqlite):
        server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base, db_path=str(db_path))
        proc = subprocess.run([sys.executable, "-m", "service.local_server", "--config", str(server.config_path)],
                              check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "db_path" in proc.stderr and str(db_path) in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stdout.splitlines()
        check_log_lines(lines)
        assert [json.loads(line)["event"] for line in lines] == ["service.bad_config"]


def test_a_listen_fd_that_is_no_listening_socket_exits_1_naming_it(tmp_path, moto_endpoint, fake_runpod):
    server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base)
    plain = tmp_path / "plain.txt"
    plain.write_text("not a socket\n")
    unbound = socket.socket()
    with open(plain) as f, unbound:
        for fd, says in ((987, "--listen-fd 987 is not an open socket"), (f.fileno(), "is not an open socket"),
                         (unbound.fileno(), "is not a listening TCP socket")):
            proc = subprocess.run([sys.executable, "-m", "service.local_server", "--config", str(server.config_path),
                                   "--listen-fd", str(fd)], pass_fds=(f.fileno(), unbound.fileno()),
                                  check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 1 and says in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr
            check_log_lines(proc.stdout.splitlines())
    bad = subprocess.run([sys.executable, "-m", "service.local_server", "--config", str(server.config_path),
                          "--listen-fd", "three"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--listen-fd: invalid int value: 'three'" in bad.stderr


def test_two_servers_take_turns_on_one_inherited_socket_and_none_refuses_a_connection(tmp_path, moto_endpoint,
                                                                                       fake_runpod):
    # The local stack's host keeps the socket and starts the next server before it stops the last one.
    owner = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    owner.bind(("127.0.0.1", 0))
    owner.listen(128)
    url = f"http://127.0.0.1:{owner.getsockname()[1]}/healthz"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = LocalServer(tmp_path / "a", moto_endpoint, fake_runpod.base).start(listen_fd=owner.fileno())
    second = LocalServer(tmp_path / "b", moto_endpoint, fake_runpod.base)
    try:
        assert httpx.get(url, timeout=10).json() == {"status": "ok", "stack": "test"}
        assert first.port == owner.getsockname()[1]  # it reports the inherited socket's port
        second.start(listen_fd=owner.fileno())
        assert first.stop() == 0
        assert httpx.get(url, timeout=10).status_code == 200  # the second one answers alone now
        assert second.stop() == 0
        with socket.create_connection(owner.getsockname(), timeout=10):  # the owner's backlog still takes it
            pass
    finally:
        first.stop()  # each a no-op once it has stopped
        second.stop()
        owner.close()
    for server in (first, second):
        lines = server.log_lines()
        check_log_lines(lines)
        assert json.loads(lines[-1])["event"] == "service.stopped"


def test_sigterm_stops_it_cleanly(tmp_path, moto_endpoint, fake_runpod):
    server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base).start()
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    assert server.stop() == 0
    lines = server.log_lines()
    check_log_lines(lines)
    assert json.loads(lines[-1])["event"] == "service.stopped"


def test_start_in_thread_serves_in_process_and_stops(tmp_path, moto_endpoint, fake_runpod, log_lines):
    from service_testkit import make_config

    from service.local_server import start_in_thread

    config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(tmp_path / "db.sqlite"),
                         s3_endpoint_url=moto_endpoint, apply_migrations_from=str(ROOT / "migrations"))
    server = start_in_thread(config, log_sink=log_lines.sink)
    try:
        assert httpx.get(server.url + "/healthz", timeout=10).json() == {"status": "ok", "stack": "test"}
        reply = httpx.post(server.url + "/api/queue/create", headers=AUTH, timeout=10,
                           json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
        assert reply.status_code == 202
    finally:
        server.stop()
    assert any('"event":"service.listening"' in line for line in log_lines)
    assert f"service-{server.port}" not in [t.name for t in threading.enumerate()]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_over_http_a_cached_result_is_revalidated_with_a_304_and_no_body(local_server, moto_endpoint):
    key = f"results/{'d' * 32}/0.png"
    data = b"\x89PNG" + bytes(3000)
    s3_client(moto_endpoint).put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/png")
    with httpx.Client(base_url=local_server.url, headers=AUTH, timeout=10) as client:
        first = client.get(f"/api/result/{key}")
        assert first.status_code == 200 and first.content == data
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert first.headers["content-disposition"] == 'inline; filename="0.png"'
        for method in ("GET", "HEAD"):
            again = client.request(method, f"/api/result/{key}", headers={"if-none-match": etag})
            assert (again.status_code, again.content) == (304, b""), method
            assert again.headers["etag"] == etag and again.headers["last-modified"] == modified, method
            assert again.headers["cache-control"] == first.headers["cache-control"] == "private, max-age=300"
            # RFC 9110 8.6: a 304 may carry only the Content-Length a 200 would; "0" would be a lie
            assert "content-length" not in again.headers, method
        # a client (or proxy) may send the header twice; RFC 9110 5.3 reads repeats as one comma-joined list
        repeated = client.build_request("GET", f"/api/result/{key}")
        repeated.headers = httpx.Headers([*[(k, v) for k, v in repeated.headers.items()],
                                          ("if-none-match", '"other"'), ("if-none-match", etag)])
        assert client.send(repeated).status_code == 304
        stranger = httpx.get(f"{local_server.url}/api/result/{key}", headers={"if-none-match": etag}, timeout=10)
        assert stranger.status_code == 401


def test_over_http_a_webhook_larger_than_the_client_body_limit_is_read_whole_and_applied(tmp_path, moto_endpoint,
                                                                                         fake_runpod):
    """The server reads a webhook body up to the webhook's own limit: RunPod echoes the job's input in it."""
    server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base, max_body_bytes=1024).start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as client:
            job = client.post("/api/queue/create", json={"workflow_id": "flux-schnell", "inputs": {"prompt": "p" * 400}})
            assert job.status_code == 202, job.text
            job_id = job.json()["job_id"]
            [run] = fake_runpod.runs
            conn = sqlite3.connect(server.db_path)
            rid = conn.execute("SELECT runpod_job_id FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
            conn.close()
            failure = "ComfyUI rejected the prompt: " + "node 6 (CLIPTextEncode): value too long; " * 12
            payload = {"id": rid, "status": "FAILED", "delayTime": 40, "executionTime": 700, "error": failure,
                       "input": run["input"], "webhook": run["webhook"]}
            body = json.dumps(payload).encode()
            assert len(body) > 1024
            status, answer = _raw(server, "POST", f"/api/runpod/webhook?job={job_id}&sig="
                                  f"{webhook_signature(WEBHOOK_SECRET, job_id)}", body, {"authorization": ""})
            assert (status, answer) == (200, {"applied": True, "reason": "applied", "status": "failed"})
            status, answer = _raw(server, "POST", "/api/queue/create", b" " * 1025)
            assert status == 413 and answer["error"]["code"] == "body_too_large"
    finally:
        server.stop()
        check_log_lines(server.log_lines())
