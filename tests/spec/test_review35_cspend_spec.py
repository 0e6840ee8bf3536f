"""api.client_daily_spend_limit_usd in a stack file: each named client's own most estimated GPU spend (US dollars) of
its jobs that end on a UTC day, the same number for every client. Left out or null, none (the default); given, a
number above 0 and at most 1,000,000, taken as written, reaching the API Worker as CLIENT_DAILY_SPEND_LIMIT_USD
(a local stack's service config: tests/local/test_review35_cspend_local_stack.py). Anything else is refused with one
line naming the field; the service config refuses the same."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError
from infra.components.api import settings_vars
from service.config import ConfigError, ServiceConfig

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64
_ABSENT = object()
FIELD = "client_daily_spend_limit_usd"


def _local_file(tmp_path: Path, limit: Any) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    if limit is not _ABSENT:
        doc["stacks"]["staging"]["api"][FIELD] = limit
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _cloud(limit: Any) -> specs.StackSpec:
    doc = copy.deepcopy(yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())["config"]
                        ["goldgate:spec"])
    doc["image"] = DIGEST
    if limit is not _ABSENT:
        doc["api"][FIELD] = limit
    return specs.from_pulumi_config("staging", doc)


def _both(tmp_path: Path, limit: Any) -> list[specs.StackSpec]:
    return [specs.load_local("staging", _local_file(tmp_path, limit)), _cloud(limit)]


def test_the_shipped_stack_files_set_none() -> None:
    loaded = [specs.load_local(stack).api for stack in ("staging", "prod")]
    loaded += [specs.load_pulumi(stack).api for stack in ("staging", "prod")]
    assert [api.client_daily_spend_limit_usd for api in loaded] == [None] * 4


@pytest.mark.parametrize("limit", [_ABSENT, None])
def test_left_out_or_null_is_none_and_no_worker_binding(tmp_path: Path, limit: Any) -> None:
    for spec in _both(tmp_path, limit):
        assert spec.api.client_daily_spend_limit_usd is None
    assert "CLIENT_DAILY_SPEND_LIMIT_USD" not in settings_vars(_cloud(limit))


@pytest.mark.parametrize("limit", [0.01, 1, 50, 1_000_000])
def test_limits_in_range_are_taken_as_written_and_reach_the_worker(tmp_path: Path, limit: float) -> None:
    for spec in _both(tmp_path, limit):
        assert spec.api.client_daily_spend_limit_usd == limit
        assert spec.api.daily_spend_limit_usd is None  # apart from the stack's
    assert float(settings_vars(_cloud(limit))["CLIENT_DAILY_SPEND_LIMIT_USD"]) == limit


@pytest.mark.parametrize(("limit", "words"), [
    (0, "not above 0"), (-5, "not above 0"), (1_000_000.5, "above the maximum 1000000"), (float("nan"), "no amount"),
    (float("inf"), "no amount"), ("50", "expected a number of US dollars"), (True, "expected a number"),
    ([50], "expected a number"),
])
def test_bad_values_are_refused_naming_the_field(tmp_path: Path, limit: Any, words: str) -> None:
    for load in (lambda: specs.load_local("staging", _local_file(tmp_path, limit)), lambda: _cloud(limit)):
        with pytest.raises(SpecError) as caught:
            load()
        message = str(caught.value)
        assert f"api.{FIELD}" in message and words in message, message
        assert "\n" not in message


def _config(**overrides: Any) -> ServiceConfig:
    raw = {"stack": "s", "api_token": "t" * 20, "webhook_secret": "w" * 20, "runpod_api_key": "k",
           "runpod_endpoint_base": "http://127.0.0.1:9/v2/ep", "public_base_url": "http://api.test", **overrides}
    return ServiceConfig.from_mapping(raw)


@pytest.mark.parametrize("limit", [0, -1, math.nan, math.inf, 1_000_001, "5", True])
def test_the_service_config_refuses_what_the_spec_refuses(limit: Any) -> None:
    assert _config(client_daily_spend_limit_usd=12.5).client_daily_spend_limit_usd == 12.5
    with pytest.raises(ConfigError, match="client_daily_spend_limit_usd must be"):
        _config(client_daily_spend_limit_usd=limit)
