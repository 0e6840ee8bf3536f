"""R2 admin over the S3 API (moto on loopback): backups go under backups/ and are never overwritten."""

from __future__ import annotations

import hashlib
import os

import pytest

from goldgate.cloudflare.errors import R2Error
from goldgate.cloudflare.r2 import R2Admin

MiB = 1024 * 1024


def test_backup_is_stored_under_the_backups_prefix_and_read_back(r2):
    stored = r2.put_backup("staging/2026-11-28T000000Z.sql", b"CREATE TABLE t (x);\n")
    assert stored.key == "backups/staging/2026-11-28T000000Z.sql"
    assert r2.get(stored.key) == b"CREATE TABLE t (x);\n"
    assert [o.key for o in r2.list()] == [stored.key]


def test_a_backup_is_never_overwritten(r2):
    r2.put_backup("staging/one.sql", b"first")
    with pytest.raises(R2Error, match="already exists"):
        r2.put_backup("staging/one.sql", b"second")
    assert r2.get("backups/staging/one.sql") == b"first"


def test_missing_object_is_a_clear_error(r2):
    with pytest.raises(R2Error, match="no object backups/none.sql"):
        r2.get("backups/none.sql")


def test_delete_removes_the_object(r2):
    stored = r2.put_backup("staging/gone.sql", b"x")
    r2.delete(stored.key)
    assert r2.list() == []


def _in_parts(r2: R2Admin) -> R2Admin:
    """The same bucket through 5 MiB parts (R2's minimum), so a few MB go up as a multipart upload."""
    return R2Admin(r2.endpoint_url, r2.bucket, "k", "s", multipart_threshold=5 * MiB, part_size=5 * MiB)


def test_a_backup_file_goes_up_in_parts_with_its_sha256_and_comes_back_streamed_to_a_file(r2, tmp_path):
    source = tmp_path / "dump.sql"
    source.write_bytes(os.urandom(11 * MiB + 123))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    stored = _in_parts(r2).put_backup_file("staging/big.sql", source, digest)
    assert stored.key == "backups/staging/big.sql" and stored.size == 11 * MiB + 123
    assert stored.etag.endswith("-3")  # three parts: 5 + 5 + 1 MiB
    fetched = r2.fetch(stored.key, tmp_path / "back.sql")
    assert fetched.recorded_sha256 == fetched.sha256 == digest and fetched.bytes == stored.size
    assert fetched.path.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.sql", "dump.sql"]  # no partial file left


def test_a_backup_file_is_never_overwritten_even_in_parts(r2, tmp_path):
    first, second = tmp_path / "first.sql", tmp_path / "second.sql"
    first.write_bytes(b"a" * (6 * MiB))
    second.write_bytes(b"b" * (6 * MiB))
    admin = _in_parts(r2)
    admin.put_backup_file("staging/one.sql", first, hashlib.sha256(first.read_bytes()).hexdigest())
    with pytest.raises(R2Error, match="already exists"):
        admin.put_backup_file("staging/one.sql", second, hashlib.sha256(second.read_bytes()).hexdigest())
    assert r2.fetch("backups/staging/one.sql", tmp_path / "back.sql").path.read_bytes() == first.read_bytes()


def test_fetching_a_missing_backup_is_a_clear_error_and_writes_nothing(r2, tmp_path):
    with pytest.raises(R2Error, match="no object backups/none.sql"):
        r2.fetch("backups/none.sql", tmp_path / "none.sql")
    assert list(tmp_path.iterdir()) == []


def test_get_reads_no_more_than_its_limit(r2) -> None:
    stored = r2.put_backup("staging/big.sql", b"x" * 2048)
    assert r2.get(stored.key, max_bytes=2048) == b"x" * 2048
    with pytest.raises(R2Error, match=r"larger than 1024 bytes: not read into memory"):
        r2.get(stored.key, max_bytes=1024)
