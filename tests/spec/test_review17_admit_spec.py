"""api.max_jobs_in_flight: the stack file's cap on jobs in flight loads with a default that guards, is refused by
name when it is no count the service can use, and reaches the service the local stack host starts."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError
from service import config as service_config
from service.config import ConfigError, ServiceConfig

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64


def _local_file(tmp_path: Path, **api: Any) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["api"].update(api)
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _cloud(**api: Any) -> specs.StackSpec:
    doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())["config"]["goldgate:spec"]
    doc = copy.deepcopy(doc)
    doc["image"] = DIGEST
    doc["api"].update(api)
    return specs.from_pulumi_config("staging", doc)


def test_every_shipped_stack_caps_its_jobs_in_flight_at_1000() -> None:
    assert specs.load_local("staging").api.max_jobs_in_flight == 1_000  # local.yaml leaves it to the default
    assert specs.load_local("prod").api.max_jobs_in_flight == 1_000
    for stack in ("staging", "prod"):
        doc = yaml.safe_load((specs.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]["goldgate:spec"]
        assert doc["api"]["max_jobs_in_flight"] == 1_000  # written out in the cloud files, where users look


def test_a_cap_in_range_is_taken_as_written(tmp_path: Path) -> None:
    assert specs.load_local("staging", _local_file(tmp_path, max_jobs_in_flight=1)).api.max_jobs_in_flight == 1
    assert _cloud(max_jobs_in_flight=100_000).api.max_jobs_in_flight == 100_000


@pytest.mark.parametrize(("value", "message"), [
    ("1000", "expected an integer, got '1000'"),
    ("1k", "expected an integer, got '1k'"),
    (1000.0, "expected an integer, got 1000.0"),
    (True, "expected an integer, got True"),
    ([1000], "expected an integer"),
    (0, "0 is below the minimum 1"),
    (-5, "-5 is below the minimum 1"),
    (100_001, "100001 is above the maximum 100000"),
    (10**30, f"{10**30} is above the maximum 100000"),
])
def test_a_cap_that_is_no_usable_count_is_refused_by_name(tmp_path: Path, value: object, message: str) -> None:
    with pytest.raises(SpecError, match=r"stacks\.staging\.api\.max_jobs_in_flight: " + re.escape(message)):
        specs.load_local("staging", _local_file(tmp_path, max_jobs_in_flight=value))
    with pytest.raises(SpecError, match=r"goldgate:spec\.api\.max_jobs_in_flight: " + re.escape(message)):
        _cloud(max_jobs_in_flight=value)


def test_the_spec_and_the_service_agree_on_the_largest_cap() -> None:
    assert specs.MAX_JOBS_IN_FLIGHT == service_config.MAX_JOBS_IN_FLIGHT
    assert ServiceConfig.max_jobs_in_flight == specs.ApiSpec.max_jobs_in_flight  # one default on both sides


@pytest.mark.parametrize(("value", "message"), [
    (0, "max_jobs_in_flight must be a positive integer"),
    (-1, "max_jobs_in_flight must be a positive integer"),
    (100_001, "max_jobs_in_flight must be at most 100000, got 100001"),
    ("12", "max_jobs_in_flight must be an integer, got str"),
    (True, "max_jobs_in_flight must be an integer, got bool"),
])
def test_the_service_refuses_a_hand_set_cap_it_cannot_use(value: object, message: str) -> None:
    raw = {"stack": "test", "api_token": "t" * 32, "webhook_secret": "w" * 32, "runpod_api_key": "k",
           "runpod_endpoint_base": "http://127.0.0.1:9/v2/ep", "public_base_url": "http://api.test",
           "max_jobs_in_flight": value}
    with pytest.raises(ConfigError, match=re.escape(message)):
        ServiceConfig.from_mapping(raw)


def host_service_config(home: Path, stacks_file: Path) -> dict[str, Any]:
    """The config the local STAGING stack host writes for its service."""
    from goldgate.local.stackhost import StackHost

    home.mkdir(exist_ok=True)
    host = StackHost("staging", home, stacks_file)
    # What `start()` sets before any service starts (the emulators' addresses); none is contacted here.
    host.runpod, host.endpoint_id = SimpleNamespace(endpoint_base="http://127.0.0.1:9/v2"), "ep-test"
    host.s3_url = "http://127.0.0.1:9"
    try:
        return host.service_config(None)
    finally:
        host.listener.close()


def test_the_local_stack_host_gives_its_service_the_stacks_cap(tmp_path: Path) -> None:
    config = host_service_config(tmp_path / "home", _local_file(tmp_path, max_jobs_in_flight=7))
    assert config["max_jobs_in_flight"] == 7
    assert ServiceConfig.from_mapping(config).max_jobs_in_flight == 7
