"""goldgate's HTTP clients share one TLS context per process (goldgate.bounded_http.tls_context): httpx built one
per client, loading the whole CA bundle, which made each `goldgate status` and each poll of a deploy pay about
45 ms of CPU for plain HTTP to 127.0.0.1. Sharing it must not weaken what a client checks of an https server."""

from __future__ import annotations

import ssl

from goldgate.bounded_http import tls_context
from goldgate.cloudflare.api import CloudflareApi
from goldgate.runpod.transport import Transport


def _context_of(client) -> ssl.SSLContext:
    return client._transport._pool._ssl_context   # httpx 0.28: the context its connection pool wraps sockets with


def test_every_client_verifies_servers_with_the_one_default_context():
    context = tls_context()
    assert context is tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() or context.cert_store_stats()["x509_ca"] > 0   # the CA bundle is loaded
    runpod = Transport("https://rest.runpod.io/v1", "rpa_" + "x" * 40, what="test")
    other = Transport("http://127.0.0.1:9", "rpa_" + "y" * 40, what="test")
    cloudflare = CloudflareApi("cf-token-" + "z" * 32)
    try:
        assert _context_of(runpod._client) is context
        assert _context_of(other._client) is context
        assert _context_of(cloudflare._client) is context
    finally:
        runpod.close()
        other.close()
        cloudflare.close()
