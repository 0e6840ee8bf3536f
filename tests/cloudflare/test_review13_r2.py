"""A backup R2 stored whose answer was lost on the way back: boto3 sends the write again, R2 refuses it (create-only),
and yet the backup is there, whole. That is a stored backup, not a failure; a different object under the name is
still never overwritten."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import urllib3
from botocore.exceptions import ConnectionClosedError
from r2_server import r2_admin

from goldgate.cloudflare.errors import R2Error
from goldgate.cloudflare.r2 import MiB, R2Admin


class LoseTheAnswer:
    """The first `operation` request goes to the server and is applied there; its answer never comes back (the
    connection closes first), as when a link drops after R2 committed the write. boto3 then retries it."""

    def __init__(self, admin: R2Admin, operation: str) -> None:
        self.sent: list[int] = []  # the status each request sent through here got (the client never saw it)
        self._http = urllib3.PoolManager()
        admin._s3.meta.events.register(f"before-send.s3.{operation}", self._send_then_drop)

    def _send_then_drop(self, request, **_kwargs):
        if self.sent:
            return  # the retry goes through as usual
        body = request.body
        data = body.read() if hasattr(body, "read") else body
        answer = self._http.request(request.method, request.url, body=data, headers=dict(request.headers))
        self.sent.append(answer.status)
        raise ConnectionClosedError(endpoint_url=request.url)


@pytest.fixture
def r2():
    with r2_admin("goldgate-review13") as admin:
        yield admin


def test_a_manifest_whose_answer_was_lost_is_stored_not_refused_as_already_there(r2):
    lost = LoseTheAnswer(r2, "PutObject")
    stored = r2.put_backup("staging/one.manifest.json", b'{"sha256": "abc"}', content_type="application/json")
    assert lost.sent == [200]
    assert stored.key == "backups/staging/one.manifest.json" and stored.size == 17
    assert r2.get(stored.key) == b'{"sha256": "abc"}'


@pytest.mark.parametrize(("operation", "size", "parts"), [("PutObject", 3 * MiB, False),
                                                          ("CompleteMultipartUpload", 11 * MiB, True)])
def test_a_backup_file_whose_answer_was_lost_is_stored_with_its_sha256(r2, tmp_path: Path, operation, size, parts):
    admin = R2Admin(r2.endpoint_url, r2.bucket, "k", "s", multipart_threshold=5 * MiB, part_size=5 * MiB)
    source = tmp_path / "dump.sql"
    source.write_bytes(os.urandom(size))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    lost = LoseTheAnswer(admin, operation)
    stored = admin.put_backup_file("staging/dump.sql", source, digest)
    assert lost.sent == [200]
    assert stored.key == "backups/staging/dump.sql" and stored.size == size
    assert stored.etag.endswith("-3") == parts
    fetched = r2.fetch(stored.key, tmp_path / "back.sql")
    assert fetched.sha256 == fetched.recorded_sha256 == digest


def test_a_different_backup_under_a_stored_name_is_still_refused_after_a_lost_answer(r2, tmp_path: Path):
    r2.put_backup("staging/one.sql", b"first")
    lost = LoseTheAnswer(r2, "PutObject")
    with pytest.raises(R2Error, match="already exists"):
        r2.put_backup("staging/one.sql", b"second")
    assert lost.sent == [412]
    assert r2.get("backups/staging/one.sql") == b"first"
