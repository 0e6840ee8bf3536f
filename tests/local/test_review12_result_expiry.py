"""The local R2 expires results as the cloud bucket's lifecycle rule does: an object under `results/` goes
`storage.result_ttl_days` after its upload, nothing else does. The local store kept every result for good: a result
a client fetched locally after 31 days was gone in the cloud, and a long-lived local stack grew without bound.

Time is not waited out: an object's upload time is what its record in the stack's objects dir says (the record the
store writes, and the one a restart puts back as Last-Modified), so the tests write that time into the past."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import jsonschema
import pytest
from stackfiles import stacks_file

from goldgate.local import stackhost
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "prod"
EXPIRED = "results/0123456789abcdef0123456789abcdef/0.png"
WITHIN = "results/fedcba9876543210fedcba9876543210/0.png"
BACKUP = "backups/prod/20260101T000000Z.sqlite"  # the DR drill's: the cloud rule does not touch backups/
SWEEP_S = 0.2  # the test's sweep interval (the host's default is hourly)
WAIT_S = 60.0  # how long a sweep may take to come round: a deadline for a hang, not a measured time
LOG_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "docs/logging-schema-v1.json").read_text()),
    format_checker=jsonschema.FormatChecker())


@pytest.fixture
def platform(home: Path) -> Iterator[LocalPlatform]:
    p = LocalPlatform(home, stacks_file(home))
    try:
        yield p
    finally:
        p.down(STACK)


def _ttl_days(platform: LocalPlatform) -> int:
    return platform.spec(STACK).storage.result_ttl_days


def _s3(platform: LocalPlatform) -> Any:  # a boto3 S3 client
    state = platform.require_running(STACK)
    d = StackDir(platform.home, STACK)
    return boto3.client("s3", endpoint_url=state["s3_endpoint_url"], region_name="us-east-1",
                        aws_access_key_id=d.secret("s3_access_key_id"),
                        aws_secret_access_key=d.secret("s3_secret_access_key"))


def _bucket(platform: LocalPlatform) -> str:
    return platform.spec(STACK).storage.bucket


def _upload(platform: LocalPlatform, *keys: str) -> None:
    s3 = _s3(platform)
    for key in keys:  # as the worker uploads: create-only
        s3.put_object(Bucket=_bucket(platform), Key=key, Body=b"\x89PNG " + key.encode(), ContentType="image/png",
                      IfNoneMatch="*")


def _record(platform: LocalPlatform, key: str) -> Path:
    """The store's record of `key` (its body is the same name, `.bin`)."""
    saved = StackDir(platform.home, STACK).objects_dir / _bucket(platform)
    return saved / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def _uploaded_days_ago(platform: LocalPlatform, key: str, days: float) -> None:
    """Rewrite `key`'s record as the store writes it, with an upload time `days` in the past."""
    path = _record(platform, key)
    record = json.loads(path.read_text())
    record["uploaded"] = (datetime.now(UTC) - timedelta(days=days)).replace(tzinfo=None).isoformat()
    path.write_text(json.dumps(record))


def _result_status(platform: LocalPlatform, key: str) -> httpx.Response:
    """What a client fetching the result through the API gets."""
    state = platform.require_running(STACK)
    return _http().get(f"{state['api_url']}/api/result/{key}",
                       headers={"Authorization": f"Bearer {platform.api_token(STACK)}"})


@functools.cache
def _http() -> httpx.Client:
    """One client for the module's fetches: `httpx.get` makes a client, and an SSL context, each time (~40 ms)."""
    return httpx.Client(timeout=30)


def _backup_kept(platform: LocalPlatform) -> bool:
    head = _s3(platform).head_object(Bucket=_bucket(platform), Key=BACKUP)
    return head["ContentLength"] > 0 and _record(platform, BACKUP).exists()


def _expired_lines(platform: LocalPlatform) -> list[dict]:
    log = StackDir(platform.home, STACK).logs_dir / "stackhost.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [e for e in lines if e["event"] == "object_store.expired"]


def _age_all(platform: LocalPlatform) -> None:
    ttl = _ttl_days(platform)
    assert ttl >= 2, "a result uploaded ttl - 1 days ago must still be within it"
    _uploaded_days_ago(platform, EXPIRED, ttl + 1)
    _uploaded_days_ago(platform, WITHIN, ttl - 1)
    _uploaded_days_ago(platform, BACKUP, ttl * 10)


def _assert_only_the_expired_result_went(platform: LocalPlatform) -> None:
    gone = _result_status(platform, EXPIRED)
    assert gone.status_code == 404, gone.text
    assert "result_ttl_days" in gone.json()["error"]["message"]
    assert not _record(platform, EXPIRED).exists() and not _record(platform, EXPIRED).with_suffix(".bin").exists()
    kept = _result_status(platform, WITHIN)
    assert kept.status_code == 200 and kept.content == b"\x89PNG " + WITHIN.encode()
    assert _backup_kept(platform)
    (line,) = _expired_lines(platform)
    LOG_SCHEMA.validate(line)
    assert line["component"] == "orchestrator" and line["level"] == "info"
    assert line["data"]["keys"] == [EXPIRED] and line["data"]["objects"] == 1
    assert line["data"]["result_ttl_days"] == _ttl_days(platform)


def test_a_result_past_the_stacks_result_ttl_is_gone_after_a_restart_and_nothing_else(
        platform: LocalPlatform) -> None:
    platform.up(STACK)
    _upload(platform, EXPIRED, WITHIN, BACKUP)
    assert _result_status(platform, EXPIRED).status_code == 200
    platform.down(STACK)
    _age_all(platform)  # the stack was down while the result reached its ttl

    platform.up(STACK)

    _assert_only_the_expired_result_went(platform)


def test_a_running_stack_expires_a_result_that_reaches_its_ttl_on_its_periodic_sweep(
        platform: LocalPlatform) -> None:
    platform.up(STACK, result_sweep_s=SWEEP_S)
    _upload(platform, EXPIRED, WITHIN, BACKUP)
    assert _result_status(platform, EXPIRED).status_code == 200
    assert _expired_lines(platform) == []  # nothing was old enough at start

    _age_all(platform)  # the result reaches its ttl while the stack runs

    deadline = datetime.now(UTC) + timedelta(seconds=WAIT_S)
    while _result_status(platform, EXPIRED).status_code == 200 and datetime.now(UTC) < deadline:
        time.sleep(SWEEP_S)
    _assert_only_the_expired_result_went(platform)


@pytest.mark.parametrize("interval", ["0", "-5", "nan", "inf", "hourly"])
def test_a_sweep_interval_that_is_no_positive_number_of_seconds_is_refused_by_name(
        home: Path, interval: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def accepted(*_a: object, **_k: object) -> None:  # not SystemExit: it gets past pytest.raises below
        pytest.fail(f"--result-sweep-s {interval!r} was accepted: a stack host would start inside the test")

    monkeypatch.setattr(stackhost, "StackHost", accepted)
    with pytest.raises(SystemExit):
        stackhost.main(["--stack", STACK, "--home", str(home), "--result-sweep-s", interval])
    assert f"{interval!r} is not a positive number of seconds" in capsys.readouterr().err
