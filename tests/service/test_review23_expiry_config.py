"""result_ttl_days: the service is told the stack's storage.result_ttl_days (service.json locally, the Worker's
RESULT_TTL_DAYS binding in the cloud) so a 404 result_missing can say whether the result expired or was lost.
Absent, the config of an older stack still loads; a value the spec would refuse is refused by name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_testkit import make_config
from test_service_cloudflare_entry import _entry, make_env

from service.config import ConfigError


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _entry(monkeypatch, with_jsnull=True)


@pytest.mark.parametrize("days", [1, 30, 3650])
def test_the_service_takes_the_stacks_result_ttl_days(days: int) -> None:
    assert make_config(result_ttl_days=days).result_ttl_days == days


def test_a_config_without_result_ttl_days_still_loads_with_none() -> None:
    assert make_config().result_ttl_days is None
    assert make_config(result_ttl_days=None).result_ttl_days is None


@pytest.mark.parametrize(("value", "message"), [
    (0, "service config result_ttl_days must be 1..3650 days (the stack's storage.result_ttl_days), got 0"),
    (-3, "service config result_ttl_days must be 1..3650 days (the stack's storage.result_ttl_days), got -3"),
    (3651, "service config result_ttl_days must be 1..3650 days (the stack's storage.result_ttl_days), got 3651"),
    ("30", "service config result_ttl_days must be an integer, got str"),
    (7.5, "service config result_ttl_days must be an integer, got float"),
    (True, "service config result_ttl_days must be an integer, got bool"),
])
def test_the_service_refuses_a_result_ttl_days_the_spec_would_refuse(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_config(result_ttl_days=value)


def test_the_worker_reads_result_ttl_days_from_its_binding(entry: Any, tmp_path: Path) -> None:
    base = "http://127.0.0.1:9/v2/ep"
    assert entry.config_from_env(make_env(tmp_path / "a", base, RESULT_TTL_DAYS="14")).result_ttl_days == 14
    assert entry.config_from_env(make_env(tmp_path / "b", base)).result_ttl_days is None  # a Worker from before
    with pytest.raises(entry.ConfigError, match="RESULT_TTL_DAYS must be a number, got 'two weeks'"):
        entry.config_from_env(make_env(tmp_path / "c", base, RESULT_TTL_DAYS="two weeks"))
    with pytest.raises(entry.ConfigError, match="result_ttl_days must be 1..3650 days"):
        entry.config_from_env(make_env(tmp_path / "d", base, RESULT_TTL_DAYS="0"))
