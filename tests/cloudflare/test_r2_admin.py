"""R2 admin over the S3 API (moto on loopback): backups go under backups/ and are never overwritten."""

from __future__ import annotations

import pytest

from goldgate.cloudflare.errors import R2Error


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
