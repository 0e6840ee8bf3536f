"""The cloud deploy checks the account's workers.dev subdomain exactly for the stacks whose Worker the Pulumi program
enables on workers.dev (infra/components/api.py on_workers_dev, its WorkersScriptSubdomain's `enabled`): the deployer
keeps its own copy of that rule (importing the program's loads the Cloudflare provider's SDK), held equal here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from goldgate.cloudflare.workers import serves_workers_dev
from goldgate.errors import SpecError
from goldgate.spec import ApiSpec, StackSpec, from_pulumi_config

REPO = Path(__file__).resolve().parents[2]
ZONE = "f" * 32

CASES = {
    "workers.dev URL": {"public_base_url": "https://goldgate-api-prod.acme.workers.dev"},
    "workers.dev URL, upper case and port": {"public_base_url": "https://goldgate-api-prod.Acme.Workers.Dev:443"},
    "workers.dev URL, trailing dot": {"public_base_url": "https://goldgate-api-prod.acme.workers.dev."},
    "own host as public_base_url": {"public_base_url": "https://api.example.com"},
    "custom domain": {"custom_domain": "api.example.com", "zone_id": ZONE},
    "custom domain beside a workers.dev public_base_url": {
        "custom_domain": "api.example.com", "zone_id": ZONE,
        "public_base_url": "https://goldgate-api-prod.acme.workers.dev"},
    "custom domain, workers.dev kept": {"custom_domain": "api.example.com", "zone_id": ZONE,
                                        "keep_workers_dev": True},
    "route": {"route": "api.example.com/*", "zone_id": ZONE},
    "https route": {"route": "https://api.example.com/*", "zone_id": ZONE},
    "route, workers.dev kept": {"route": "api.example.com/*", "zone_id": ZONE, "keep_workers_dev": True},
    "route beside a public_base_url": {"route": "api.example.com/*", "zone_id": ZONE,
                                       "public_base_url": "https://goldgate-api-prod.acme.workers.dev"},
}


def _spec(**api: object) -> StackSpec:
    doc = yaml.safe_load((REPO / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["goldgate:spec"]
    doc["cloud"]["cloudflare_account_id"] = "0" * 31 + "1"
    doc["image"] = "registry.example.com/acme/goldgate-worker@sha256:" + "a" * 64
    doc["api"]["public_base_url"] = "https://goldgate-api-prod.acme.workers.dev"
    spec = from_pulumi_config("prod", doc)
    fields = {"script_name": spec.api.script_name, "public_base_url": None, **api}
    return dataclasses.replace(spec, api=ApiSpec(**fields))


@pytest.mark.parametrize("name", list(CASES))
def test_the_deployer_checks_the_stacks_the_program_enables_on_workers_dev(name: str) -> None:
    from infra.components.api import on_workers_dev

    spec = _spec(**CASES[name])
    try:
        program = on_workers_dev(spec)
    except SpecError:
        pytest.fail(f"{name}: the program refuses this spec; pick a case it accepts")
    assert serves_workers_dev(spec) is program, name


def test_the_rule_marks_both_kinds_of_stack() -> None:
    """Guards the table above: it holds stacks on and off workers.dev, so the comparison can fail either way."""
    results = {name: serves_workers_dev(_spec(**api)) for name, api in CASES.items()}
    assert results["workers.dev URL"] and results["custom domain, workers.dev kept"]
    assert not results["custom domain"] and not results["route"]
