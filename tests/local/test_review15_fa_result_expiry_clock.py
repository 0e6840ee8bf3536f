"""The local R2's lifecycle rule counts back from this machine's clock: with the clock ten years ahead, `goldgate up`
(DurableBucket.attach: expire, then put back what is left) deleted every result object a stack kept. While the clock
reads more than storage.result_ttl_days + 366 days past the uploads before it, no result expires (on disk or put
back), the host log says why and what to do, once, and that holds after results are uploaded under the wrong clock;
once the clock is right, expiry goes on. The clock is injected; nothing sleeps."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema

from goldgate.local.object_store import DurableBucket
from goldgate.logs import JsonLogger

TTL = 30
NOW = datetime.now(UTC).replace(tzinfo=None)  # as moto keeps its times: naive UTC
AHEAD = NOW + timedelta(days=3652)  # a clock ten years fast
LOG_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "docs/logging-schema-v1.json").read_text()),
    format_checker=jsonschema.FormatChecker())


def _store(root: Path) -> tuple[DurableBucket, io.StringIO]:
    log = io.StringIO()
    return DurableBucket(root, "results-bucket", JsonLogger("orchestrator", log), result_ttl_days=TTL), log


def _put(store: DurableBucket, key: str, uploaded: datetime) -> None:
    store.save(key, b"\x89PNG " + key.encode(), {"content-type": "image/png"}, uploaded)


def _on_disk(root: Path) -> set[str]:
    return {json.loads(p.read_text())["key"] for p in root.glob("*.json")}


def _lines(log: io.StringIO, event: str) -> list[dict]:
    return [line for line in map(json.loads, log.getvalue().splitlines()) if line["event"] == event]


def _key(n: int) -> str:
    return f"results/{hashlib.md5(str(n).encode()).hexdigest()}/0.png"


def test_a_clock_ten_years_ahead_expires_no_result_and_says_why_once(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store, log = _store(root)
    keys = {_key(n): NOW - timedelta(days=days) for n, days in enumerate((40, 20, 1))}
    for key, uploaded in keys.items():
        _put(store, key, uploaded)

    assert store.expire(AHEAD) == []  # what the host's start and its hourly sweep run
    assert store.expire(AHEAD + timedelta(hours=1)) == []
    assert {key for key, *_ in store.saved(AHEAD)} == set(keys)  # what `goldgate up` puts back in the bucket
    assert _on_disk(root) == set(keys)
    (line,) = _lines(log, "object_store.clock_ahead")
    LOG_SCHEMA.validate(line)
    assert line["level"] == "warning" and "date -u" in line["message"] and str(root) in line["message"]
    assert _lines(log, "object_store.expired") == []

    # A result uploaded under the wrong clock (its time ten years ahead): the sweeps still delete none uploaded
    # before the gap; the one uploaded since expires by the clock it was stamped with, as any result does (a real
    # stretch with no upload cannot be told from a clock stepped ahead: what follows it must not pile up for good);
    # the host log is not filled with the same line every hour.
    _put(store, _key(9), AHEAD)
    assert store.expire(AHEAD + timedelta(days=TTL + 1)) == [_key(9)]
    assert store.expire(AHEAD + timedelta(days=TTL + 2)) == []
    assert _on_disk(root) == set(keys)
    assert len(_lines(log, "object_store.clock_ahead")) == 1  # the same gap: named once


def test_with_the_clock_right_results_past_their_ttl_expire_as_before(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store, log = _store(root)
    old, within = _key(1), _key(2)
    _put(store, old, NOW - timedelta(days=TTL + 1))
    _put(store, within, NOW - timedelta(days=TTL - 1))
    _put(store, _key(3), AHEAD)  # uploaded while the clock was wrong, before it was set right: no evidence of now

    assert store.expire(NOW) == [old]
    assert _on_disk(root) == {within, _key(3)}
    assert _lines(log, "object_store.clock_ahead") == []


def test_a_stack_idle_for_less_than_its_ttl_plus_a_year_still_expires(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store, _ = _store(root)
    _put(store, _key(1), NOW - timedelta(days=300))
    assert store.expire(NOW) == [_key(1)]
    assert store.saved(NOW) == []
