"""An S3-protocol server on 127.0.0.1 whose GET bodies break off: it sends the object's headers (its whole
Content-Length) and then only `cut_after` bytes before closing the connection, as a store does when its
connection drops mid-body. moto cannot do that; the S3 store reads it over real HTTP with real botocore."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from serving import serving

from service.s3_store import S3ResultStore


@dataclass
class BrokenObject:
    data: bytes
    content_type: str
    cut_after: int


def _handler(objects: dict[str, BrokenObject]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: tests read what the client got
            pass

        def _object(self) -> BrokenObject | None:
            _, _, key = unquote(urlsplit(self.path).path).lstrip("/").partition("/")  # path style: /bucket/key
            return objects.get(key)

        def _headers(self, found: BrokenObject) -> None:
            self.send_response(200)
            self.send_header("Content-Type", found.content_type)
            self.send_header("Content-Length", str(len(found.data)))
            self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
            self.send_header("Last-Modified", "Sun, 29 Nov 2026 09:00:00 GMT")
            self.end_headers()

        def do_HEAD(self) -> None:
            found = self._object()
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._headers(found)

        def do_GET(self) -> None:
            found = self._object()
            if found is None:
                body = b"<Error><Code>NoSuchKey</Code></Error>"
                self.send_response(404)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self._headers(found)
            self.wfile.write(found.data[:found.cut_after])
            self.wfile.flush()
            self.close_connection = True  # the rest never comes

    return Handler


@contextmanager
def breaking_s3(objects: dict[str, BrokenObject]) -> Iterator[str]:
    """The endpoint URL of a server that serves `objects` (key -> object) in any bucket."""
    with serving(_handler(objects)) as url:
        yield url


def store_at(endpoint: str) -> S3ResultStore:
    return S3ResultStore.connect(endpoint, "goldgate-results", "AKIATESTSERVICE", "s3s-SecretAccessKey-9b1d3f5a7c")
