"""StackSpec under hostile config: a secret given in the wrong place is never repeated in the error, the field it
sits in is named, and a misspelt name whose value would be ignored is refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

DIGEST = "registry.example/goldgate/worker@sha256:" + "a" * 64
PASSWORD = "hunter2-Sup3rSecret"


def cloud_doc() -> dict[str, Any]:
    doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())["config"]["goldgate:spec"]
    doc = copy.deepcopy(doc)
    doc["image"] = DIGEST
    return doc


def cloud_refusal(section: str, key: str, value: object) -> str:
    doc = cloud_doc()
    doc.setdefault(section, {})[key] = value
    with pytest.raises(SpecError) as err:
        specs.from_pulumi_config("staging", doc)
    return str(err.value)


def local_refusal(tmp_path: Path, section: str, key: str, value: object) -> str:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"].setdefault(section, {})[key] = value
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError) as err:
        specs.load_local("staging", path)
    return str(err.value)


@pytest.mark.parametrize(("section", "key"), [("api", "public_base_url"), ("cloud", "runpod_api_base"),
                                              ("cloud", "runpod_endpoint_base")])
@pytest.mark.parametrize("url", [f"https://admin:{PASSWORD}@api.example.com",
                                 f"https://admin:{PASSWORD}@api.example.com/v2",
                                 f"https://admin:{PASSWORD}@with-at@api.example.com",
                                 f"admin:{PASSWORD}@api.example.com",
                                 f"https://admin:{PASSWORD}@api.example.com/\n"])
def test_a_password_in_a_base_url_is_refused_without_repeating_it(section: str, key: str, url: str) -> None:
    message = cloud_refusal(section, key, url)
    assert f"goldgate:spec.{section}.{key}: " in message
    assert PASSWORD not in message and "admin" not in message, message
    assert "api.example.com" in message  # the host still says which URL it is


@pytest.mark.parametrize(("key", "value"), [("custom_domain", f"admin:{PASSWORD}@api.example.com"),
                                            ("custom_domain", f"admin{PASSWORD}@api.example.com"),
                                            ("route", f"https://admin:{PASSWORD}@api.example.com/*")])
def test_credentials_in_a_custom_domain_or_route_are_not_repeated(key: str, value: str) -> None:
    message = cloud_refusal("api", key, value)
    assert f"goldgate:spec.api.{key}: " in message
    assert PASSWORD not in message, message


def test_a_local_stack_file_does_not_repeat_a_password_either(tmp_path: Path) -> None:
    message = local_refusal(tmp_path, "api", "public_base_url", f"https://ops:{PASSWORD}@api.example.com")
    assert "stacks.staging.api.public_base_url: " in message and "user name or password" in message
    assert PASSWORD not in message


@pytest.mark.parametrize(("value", "rule"), [(f"hf_{PASSWORD}\n", "contains a control character"),
                                             (f"hf_{PASSWORD}" * 100, "characters long")])
def test_a_bad_env_value_names_its_variable_and_never_shows_the_value(tmp_path: Path, value: str,
                                                                      rule: str) -> None:
    # A value may hold a credential whatever its name (a credential's name is refused before: review13).
    for message in (cloud_refusal("endpoint", "env", {"LOG_LEVEL": "info", "EXTRA_ARGS": value}),
                    local_refusal(tmp_path, "endpoint", "env", {"LOG_LEVEL": "info", "EXTRA_ARGS": value})):
        assert "endpoint.env: EXTRA_ARGS: " in message and rule in message, message
        assert PASSWORD not in message, message


@pytest.mark.parametrize("name", ["NVIDIA RTX 4090", "NVIDIA GeForce RTX 4090 ", "nvidia geforce rtx 4090"])
def test_a_price_under_a_misspelt_gpu_type_is_refused_not_silently_ignored(name: str) -> None:
    # Only endpoint.cost_gpu_type's price is ever read: under another name the estimates would quietly stay on
    # the vendor table.
    doc = cloud_doc()
    doc["prices_per_gpu_second"] = {name: 0.0005}
    with pytest.raises(SpecError) as err:
        specs.from_pulumi_config("staging", doc)
    message = str(err.value)
    assert message.startswith("Pulumi config of stack staging: goldgate:spec.prices_per_gpu_second: ")
    assert specs.show(name) in message and "cost_gpu_type" in message


def test_a_price_under_a_gpu_type_that_is_not_text_is_refused() -> None:
    doc = cloud_doc()
    doc["prices_per_gpu_second"] = {4090: 0.0005}
    with pytest.raises(SpecError, match=r"goldgate:spec\.prices_per_gpu_second: 4090 is not endpoint\.cost_gpu_type"):
        specs.from_pulumi_config("staging", doc)


def test_the_price_of_the_costed_gpu_type_is_used() -> None:
    doc = cloud_doc()
    doc["endpoint"]["cost_gpu_type"] = "NVIDIA L40S"
    doc["prices_per_gpu_second"] = {"NVIDIA L40S": 0.0006}
    assert specs.from_pulumi_config("staging", doc).price_per_gpu_second() == 0.0006


def test_show_url_leaves_a_url_without_credentials_as_show_quotes_it() -> None:
    for url in ("https://api.example.com/v2", "api.example.com", "https://api.example.com/a@b", 42):
        assert specs.show_url(url) == specs.show(url)
