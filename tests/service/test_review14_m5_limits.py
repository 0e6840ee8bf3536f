"""The body limit is "at most max_body_bytes": a body of exactly that many bytes is taken, one more is a 413, both as
sent (its length) and as declared (Content-Length), in the core and through the ASGI shell, which also joins a
repeated field as the Worker does; the webhook's larger limit is capped by RunPod's own."""

from __future__ import annotations

import json

from service_testkit import API_TOKEN, BUCKET

from service.app import webhook_body_limit
from service.asgi import AsgiService
from service.s3_store import _CHUNK

_CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


def _body_of(size: int) -> bytes:
    raw = json.dumps(_CREATE).encode()
    return raw + b" " * (size - len(raw))  # trailing whitespace is valid JSON


def test_a_create_body_of_exactly_the_limit_is_taken_and_one_byte_more_is_a_413(svc):
    limit = svc.app.max_body_bytes
    status, body, _ = svc.call("POST", "/api/queue/create", raw=_body_of(limit),
                               headers={"content-length": str(limit)})
    assert status == 202, body
    status, body, _ = svc.call("POST", "/api/queue/create", raw=_body_of(limit + 1),
                               headers={"content-length": str(limit + 1)})
    assert (status, body["error"]["code"]) == (413, "body_too_large")
    assert svc.rows("SELECT COUNT(*) AS n FROM jobs")[0]["n"] == 1


def test_a_declared_content_length_of_exactly_the_limit_is_not_refused_before_the_body(svc):
    # The Worker refuses on the declared length before it reads a byte: the boundary must be the same there.
    limit = svc.app.max_body_bytes
    raw = json.dumps(_CREATE).encode()
    status, body, _ = svc.call("POST", "/api/queue/create", raw=raw, headers={"content-length": str(limit)})
    assert status == 202, body
    status, body, _ = svc.call("POST", "/api/queue/create", raw=raw, headers={"content-length": str(limit + 1)})
    assert (status, body["error"]["code"]) == (413, "body_too_large")


def test_the_asgi_shell_reads_past_a_limit_filled_exactly_by_the_first_chunks_and_answers_413(svc):
    # Chunks that add up to the limit and then one byte more: the shell must read on past the limit to see the
    # 413, not stop there and hand the core the valid JSON read so far as the whole body.
    limit = svc.app.max_body_bytes
    full = _body_of(limit + 1)
    status, body = _over_asgi(svc, [full[:limit], full[limit:]])
    assert (status, json.loads(body)["error"]["code"]) == (413, "body_too_large")
    status, body = _over_asgi(svc, [full[:limit], b""])
    assert status == 202, body
    assert svc.rows("SELECT COUNT(*) AS n FROM jobs")[0]["n"] == 1


def _over_asgi(svc, chunks: list[bytes], method: str = "POST", path: bytes = b"/api/queue/create",
               headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, bytes]:
    events = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
              for i, chunk in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        return events.pop(0) if events else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    if headers is None:
        headers = [(b"authorization", f"Bearer {API_TOKEN}".encode()), (b"transfer-encoding", b"chunked")]
    scope = {"type": "http", "method": method, "path": path.decode(), "raw_path": path, "query_string": b"",
             "headers": headers}
    svc.run(AsgiService(svc.app)(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_repeated_authorization_field_is_one_comma_joined_value_and_refused_as_the_worker_refuses_it(svc):
    # The Worker's Headers join repeated fields with ", " (RFC 9110 5.3): a second field holding the token does not
    # open the API there, so it must not locally either.
    token = f"Bearer {API_TOKEN}".encode()
    for fields in ([b"Bearer not-the-token", token], [token, b"Bearer not-the-token"]):
        status, body = _over_asgi(svc, [b""], method="GET", path=b"/api/workflows",
                                  headers=[(b"authorization", value) for value in fields])
        assert (status, json.loads(body)["error"]["code"]) == (401, "unauthorized"), fields
    status, _ = _over_asgi(svc, [b""], method="GET", path=b"/api/workflows", headers=[(b"authorization", token)])
    assert status == 200


def test_the_webhook_limit_grows_with_the_client_limit_only_up_to_runpods_own_run_limit():
    # RunPod refuses a /run body over 10 MB, so no webhook echoes more input than that: a large client limit must
    # not let a signed caller make the service buffer 6 times it.
    room = 1024 * 1024
    assert webhook_body_limit(65_536) == 6 * 65_536 + room
    assert webhook_body_limit(10 * 1024 * 1024) == 10 * 1024 * 1024 + room
    assert webhook_body_limit(100 * 1024 * 1024) == 10 * 1024 * 1024 + room


def test_a_download_whose_client_left_has_the_stores_stream_closed_before_the_shell_returns(svc):
    # Not whenever the garbage collector finds it: until then the store's stream holds one of its pooled
    # connections, and many clients leaving mid-download use the pool up.
    job_id = "e" * 32
    key = f"results/{job_id}/0.png"
    svc.s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x89PNG" + bytes(8 * _CHUNK), ContentType="image/png")
    closed: list[bool] = []
    get = svc.app.store._get

    def watched_get(name):
        meta, body, first = get(name)
        close = body.close
        body.close = lambda: (closed.append(True), close())
        return meta, body, first

    svc.app.store._get = watched_get
    events = [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return events.pop(0) if events else {"type": "http.disconnect"}  # the client is gone once it asked

    async def send(message):
        sent.append(message)

    async def download() -> list[bool]:
        scope = {"type": "http", "method": "GET", "path": f"/api/result/{key}", "raw_path": f"/api/result/{key}".encode(),
                 "query_string": b"", "headers": [(b"authorization", f"Bearer {API_TOKEN}".encode())]}
        await AsgiService(svc.app)(scope, receive, send)
        return list(closed)  # read before this coroutine lets the loop run anything else

    assert svc.run(download()) == [True]
    assert sent[0]["status"] == 200
    assert sum(len(m.get("body", b"")) for m in sent[1:]) < 8 * _CHUNK  # it stopped sending the object
