"""The ASGI shell reads a body only as far as the request's own limit: it asks which limit applies (checking a
webhook's signature) only once a body has grown past the least any request has, so a request whose limit is
the smaller one is never read further than that limit and a chunk."""

from __future__ import annotations

from service_testkit import BUCKET, make_config

from service.app import create_app, webhook_body_limit
from service.asgi import AsgiService
from service.signing import webhook_signature

__all__ = ["BUCKET"]

_MIB = 1 << 20
JOB = "0123456789abcdef0123456789abcdef"


def _chunks_read(svc, app, chunks: int, query: bytes) -> int:
    """How many 1 MiB chunks the shell takes of a signed webhook body of `chunks` of them before answering."""
    taken = 0

    async def receive():
        nonlocal taken
        taken += 1
        return {"type": "http.request", "body": b" " * _MIB, "more_body": taken < chunks}

    async def send(_message):
        return None

    scope = {"type": "http", "method": "POST", "path": "/api/runpod/webhook", "raw_path": b"/api/runpod/webhook",
             "query_string": query, "headers": [(b"transfer-encoding", b"chunked")]}
    svc.run(AsgiService(app)(scope, receive, send))
    return taken


def test_a_signed_webhook_is_read_no_further_than_its_limit_when_the_client_limit_is_larger(svc):
    # max_body_bytes above RunPod's /run limit: the webhook's limit (RunPod's cap and room for the outcome) is the
    # smaller one, and a signed delivery must stop at it, not at the client's 20 MiB.
    config = make_config(max_body_bytes=20 * _MIB, runpod_endpoint_base=svc.fake.base)
    app = create_app(config, svc.db, svc.app.store, svc.app.runpod)
    limit = webhook_body_limit(config.max_body_bytes)
    assert limit < config.max_body_bytes
    signed = f"job={JOB}&sig={webhook_signature(config.webhook_secret, JOB)}".encode()
    assert _chunks_read(svc, app, 30, signed) <= limit // _MIB + 1
    unsigned = f"job={JOB}&sig={'0' * 64}".encode()
    assert _chunks_read(svc, app, 30, unsigned) <= 20 + 1  # an anonymous caller: the client's limit

