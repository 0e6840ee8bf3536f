"""The local R2's saved records, in process: a body is judged lost by the size its record stored, and only by an
integer size; a record saved before records carried a size (or whose size was edited into something else) is
judged by its body's presence alone, never removed for a size it cannot state."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from goldgate.local.object_store import DurableBucket
from goldgate.logs import JsonLogger

KEY = "results/" + "a" * 32 + "/0.png"
BODY = b"\x89PNG" + bytes(64)


def _bucket(root: Path) -> tuple[DurableBucket, io.StringIO]:
    log = io.StringIO()
    return DurableBucket(root, "results", JsonLogger("orchestrator", log), result_ttl_days=7), log


@pytest.mark.parametrize("size", [None, "68", True, 68.0])
def test_a_record_without_an_integer_size_keeps_an_intact_body(tmp_path: Path, size: object) -> None:
    bucket, log = _bucket(tmp_path)
    bucket.save(KEY, BODY, {}, datetime.now(UTC))
    [meta] = tmp_path.glob("*.json")
    record = json.loads(meta.read_text())
    assert record["bytes"] == len(BODY)
    if size is None:
        del record["bytes"]
    else:
        record["bytes"] = size
    meta.write_text(json.dumps(record))
    assert [key for key, *_ in bucket.saved()] == [KEY]
    assert "body_lost" not in log.getvalue()


def test_a_body_cut_to_another_size_than_its_record_says_is_lost(tmp_path: Path) -> None:
    bucket, log = _bucket(tmp_path)
    bucket.save(KEY, BODY, {}, datetime.now(UTC))
    [body] = tmp_path.glob("*.bin")
    body.write_bytes(BODY[:10])
    assert bucket.saved() == []
    assert "object_store.body_lost" in log.getvalue() and "is cut short: 10 bytes where 68 were stored" \
        in log.getvalue()


def test_two_reads_that_found_the_same_body_gone_remove_and_log_it_once(tmp_path: Path) -> None:
    """The second of two GETs that both looked up the key before the first removed it (moto's key object in
    hand, the bucket no longer holding it) answers 404 without removing or logging it again."""
    from types import SimpleNamespace

    from goldgate.local.object_store import SavedBody

    bucket, log = _bucket(tmp_path)
    bucket.save(KEY, BODY, {}, datetime.now(UTC))
    [body] = tmp_path.glob("*.bin")
    key = SimpleNamespace(size=len(BODY), _value_buffer=SavedBody(body, len(BODY)))
    backend = SimpleNamespace(buckets={"results": SimpleNamespace(keys={KEY: key})})
    deletes: list[str] = []

    def moto_delete(backend: object, bucket_name: str, key_name: str) -> None:
        deletes.append(key_name)
        del backend.buckets[bucket_name].keys[key_name]

    bucket._moto_delete = moto_delete  # attach() sets moto's own
    body.unlink()
    assert bucket._body_lost(backend, KEY, key) and bucket._body_lost(backend, KEY, key)
    assert deletes == [KEY]
    assert log.getvalue().count("object_store.body_lost") == 1


def test_a_body_moto_wrote_anew_is_in_memory_and_never_judged_by_its_old_file(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from goldgate.local.object_store import SavedBody

    bucket, log = _bucket(tmp_path)
    bucket.save(KEY, BODY, {}, datetime.now(UTC))
    [body] = tmp_path.glob("*.bin")
    saved = SavedBody(body, len(BODY))
    saved.seek(0)
    saved.write(b"\x89PNG")  # moto writes the value anew: kept in memory from now on
    key = SimpleNamespace(size=len(BODY), _value_buffer=saved)
    backend = SimpleNamespace(buckets={"results": SimpleNamespace(keys={KEY: key})})
    body.unlink()  # the file it was first read from is gone; the object is whole in memory
    assert bucket._body_lost(backend, KEY, key) is False
    assert backend.buckets["results"].keys == {KEY: key} and "body_lost" not in log.getvalue()


def test_a_lost_body_whose_record_names_no_upload_time_is_removed_not_skipped_at_every_start(tmp_path: Path) -> None:
    bucket, log = _bucket(tmp_path)
    bucket.save(KEY, BODY, {}, datetime.now(UTC))
    [meta] = tmp_path.glob("*.json")
    record = json.loads(meta.read_text())
    del record["uploaded"]  # a record saved before records carried it: the body's mtime stood for it
    meta.write_text(json.dumps(record))
    next(tmp_path.glob("*.bin")).unlink()
    assert bucket.saved() == []
    assert "object_store.body_lost" in log.getvalue() and "unreadable" not in log.getvalue()
    assert list(tmp_path.glob("*.json")) == []  # the next start finds nothing left to say


def test_a_directory_in_a_bodys_place_is_no_body(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from goldgate.local.object_store import SavedBody

    bucket, log = _bucket(tmp_path)
    bucket.save(KEY, BODY, {}, datetime.now(UTC))
    [body] = tmp_path.glob("*.bin")
    key = SimpleNamespace(size=len(BODY), _value_buffer=SavedBody(body, len(BODY)))
    backend = SimpleNamespace(buckets={"results": SimpleNamespace(keys={KEY: key})})
    bucket._moto_delete = lambda backend, bucket_name, key_name: backend.buckets[bucket_name].keys.pop(key_name)
    body.unlink()
    body.mkdir()
    assert bucket._body_lost(backend, KEY, key)
    assert f"its body {body} is missing" in log.getvalue(), log.getvalue()
