"""Review 30 (fix30): what the local R2 keeps aside of a damaged result (`damaged/`: the body found and the evidence
of what was stored and found) goes `storage.result_ttl_days` after it was found, as results go (`expire`: the host's
start and its hourly sweep); not while the clock is not believed (a clock ten years ahead), and not for a key
outside `results/`, which never expires. Before, `expire` looked only at the records in the bucket's directory:
every damaged copy of a result was kept for good, past the retention the cloud keeps to, and the `body_lost` line
said so nowhere. The clock is injected; nothing sleeps."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema

from goldgate.local.object_store import DurableBucket
from goldgate.logs import JsonLogger

TTL = 7
NOW = datetime.now(UTC).replace(tzinfo=None)  # as moto keeps its times: naive UTC
RESULT = "results/" + "7" * 32 + "/0.png"
BODY = b"\x89PNG" + bytes(range(256)) * 4
LOG_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "docs/logging-schema-v1.json").read_text()),
    format_checker=jsonschema.FormatChecker())


def _store(root: Path) -> tuple[DurableBucket, io.StringIO]:
    log = io.StringIO()
    return DurableBucket(root, "results", JsonLogger("orchestrator", log), result_ttl_days=TTL), log


def _lines(log: io.StringIO, event: str) -> list[dict]:
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    for line in lines:
        LOG_SCHEMA.validate(line)
    return [line for line in lines if line["event"] == event]


def _damaged(root: Path, key: str = RESULT) -> tuple[DurableBucket, io.StringIO]:
    """A stack's store whose saved body of `key` was written over by hand, found so at the next start."""
    store, log = _store(root)
    store.save(key, BODY, {"content-type": "image/png"}, NOW - timedelta(hours=1))
    [body] = root.glob("*.bin")
    body.write_bytes(b"\x00" * len(BODY))
    assert store.saved() == []  # what a start puts back: not the damaged object
    return store, log


def _kept(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "damaged").iterdir())


def test_a_damaged_result_kept_aside_is_deleted_result_ttl_days_after_it_was_found(tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    store, log = _damaged(root)
    [lost] = _lines(log, "object_store.body_lost")
    assert f"they are deleted {TTL} days after they were found (storage.result_ttl_days)" in lost["message"], lost
    assert len(_kept(root)) == 2, _kept(root)   # the body found and the evidence

    assert store.expire(NOW + timedelta(days=TTL - 1)) == []
    assert len(_kept(root)) == 2, "deleted before storage.result_ttl_days had passed"

    store.expire(NOW + timedelta(days=TTL, hours=2))   # the hourly sweep once the days have passed
    assert _kept(root) == [], f"still kept past storage.result_ttl_days: {_kept(root)}"
    [expired] = _lines(log, "object_store.expired")
    assert expired["data"]["damaged"] == 1 and expired["data"]["objects"] == 0, expired


def test_a_clock_ten_years_ahead_deletes_nothing_kept_aside_until_it_is_set_right(tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    store, _ = _damaged(root)
    store.expire(NOW + timedelta(days=3652))
    assert len(_kept(root)) == 2, _kept(root)
    store.expire(NOW + timedelta(days=TTL, hours=2))   # the clock set right, the days passed
    assert _kept(root) == [], _kept(root)


def test_only_what_is_kept_aside_of_a_result_expires(tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    _, notes_log = _damaged(root, key="notes/readme.txt")   # outside results/: no object there ever expires
    [lost] = _lines(notes_log, "object_store.body_lost")
    assert "days after they were found" not in lost["message"], lost
    store, _ = _damaged(root)
    both = _kept(root)
    store.expire(NOW + timedelta(days=TTL, hours=2))
    kept = _kept(root)
    assert len(both) == 4 and len(kept) == 2 and set(kept) < set(both), kept
    assert {json.loads((root / "damaged" / name).read_text())["key"] for name in kept if name.endswith(".json")} \
        == {"notes/readme.txt"}


def test_evidence_cut_short_by_an_earlier_full_disk_goes_by_its_file_time(tmp_path: Path) -> None:
    """Before the evidence was written whole, a full disk left it cut short (no JSON, no key, no found_at)."""
    root = tmp_path / "objects" / "results"
    store, _ = _store(root)
    (root / "damaged").mkdir(parents=True)
    stem = "a" * 64 + "-20261101T000000000000Z"
    (root / "damaged" / f"{stem}.bin").write_bytes(BODY)
    (root / "damaged" / f"{stem}.json").write_text('{\n "key": "results/')
    then = (NOW - timedelta(days=1)).replace(tzinfo=UTC).timestamp()
    os.utime(root / "damaged" / f"{stem}.json", (then, then))
    store.expire(NOW)
    assert len(_kept(root)) == 2
    store.expire(NOW + timedelta(days=TTL))
    assert _kept(root) == []
