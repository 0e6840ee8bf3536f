"""workers.dev turned off by declaring it off, never by no longer declaring it.

Cloudflare's provider does nothing when a WorkersScriptSubdomain is deleted: its delete is empty and its plan warns
that the destruction "will remove the resource from the Terraform state but will not change it in the API"
(terraform-provider-cloudflare, internal/services/workers_script_subdomain/resource.go, which pulumi-cloudflare
wraps). The program declared the resource only while the API was on workers.dev (or kept there), so switching a
stack to a custom domain, and later removing api.keep_workers_dev as docs/CLOUD.md says, took it out of the program:
`pulumi up` dropped it from the state and the Worker went on answering at workers.dev, outside the zone's WAF and
Access rules, while the operator believed it off. Now every stack declares it, `enabled` false unless the API is
(or is kept) there, and each switch is an update of the one resource.

A switch to a route turns workers.dev off as well now, so api.keep_workers_dev, refused before without a custom
domain, keeps it beside a route too, for the jobs sent before that switch."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_harness import SECRETS, filled_stack_file, use_cloud
from test_infra_program_changes import declared

from goldgate.errors import SpecError
from infra.components.api import check_exposure
from infra.program import read_config
from infra.worker_bundle import WorkerBundle

SUBDOMAIN = "workersScriptSubdomain:WorkersScriptSubdomain"
DOMAIN = "api-staging.example.com"
ZONE = "0123456789abcdef0123456789abcdef"


def _doc(**api: Any) -> dict[str, Any]:
    doc = copy.deepcopy(filled_stack_file("staging")["config"]["goldgate:spec"])
    doc["api"].update(api)
    doc["api"] = {k: v for k, v in doc["api"].items() if v is not None}
    return doc


def _subdomain(doc: dict[str, Any], stacks_dir: Path, tmp_path: Path, bundle: WorkerBundle) -> tuple[str, dict]:
    """The logical name and inputs of the one workers.dev resource the program declares for `doc`."""
    found = [(name, inputs) for (kind, name), (inputs, _, _) in
             declared("staging", doc, SECRETS, stacks_dir, tmp_path, bundle).items() if kind == SUBDOMAIN]
    assert len(found) == 1, f"the program declares {len(found)} workers.dev resources, not one"
    return found[0]


ON_WORKERS_DEV = _doc()  # the stack file as shipped: public_base_url on workers.dev
ON_DOMAIN = _doc(custom_domain=DOMAIN, zone_id=ZONE, public_base_url=None)
KEPT = _doc(custom_domain=DOMAIN, zone_id=ZONE, public_base_url=None, keep_workers_dev=True)
ON_ROUTE = _doc(route=f"{DOMAIN}/*", zone_id=ZONE, public_base_url=None)
KEPT_BESIDE_ROUTE = _doc(route=f"{DOMAIN}/*", zone_id=ZONE, public_base_url=None, keep_workers_dev=True)


@pytest.mark.parametrize("stages", [
    # docs/CLOUD.md's switch on a stack that serves jobs: keep workers.dev, then remove the setting
    [ON_WORKERS_DEV, KEPT, ON_DOMAIN],
    [ON_WORKERS_DEV, KEPT_BESIDE_ROUTE, ON_ROUTE],
    # the switch on a stack with nothing in flight
    [ON_WORKERS_DEV, ON_DOMAIN],
    [ON_WORKERS_DEV, ON_ROUTE],
], ids=["kept-then-removed", "kept-beside-route-then-removed", "custom-domain", "route"])
def test_every_switch_away_from_workers_dev_declares_it_off(stages, stacks_dir, tmp_path, bundle):
    seen = [_subdomain(doc, stacks_dir, tmp_path, bundle) for doc in stages]
    # one resource throughout: each `pulumi up` updates it, none deletes it (a delete changes nothing)
    assert len({name for name, _ in seen}) == 1
    enabled = [inputs["enabled"] for _, inputs in seen]
    assert enabled == [True] * (len(stages) - 1) + [False]
    assert all(inputs["previewsEnabled"] is False for _, inputs in seen)


@pytest.mark.parametrize("doc", [ON_DOMAIN, ON_ROUTE], ids=["custom-domain", "route"])
def test_a_stack_never_on_workers_dev_declares_it_off(doc, stacks_dir, tmp_path, bundle):
    # whatever the account's default for a Worker uploaded through the API, it does not answer at workers.dev
    _, inputs = _subdomain(doc, stacks_dir, tmp_path, bundle)
    assert inputs["enabled"] is False


def _warnings(doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    use_cloud("staging", doc)
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **kw: warned.append(message))
    check_exposure(read_config("staging")[0])
    return [m for m in warned if "keep_workers_dev" in m]


def test_keep_workers_dev_beside_a_route_says_until_when(monkeypatch):
    (message,) = _warnings(KEPT_BESIDE_ROUTE, monkeypatch)
    assert f"beside https://{DOMAIN}," in message and "goldgate stuck" in message and "WAF" in message


def test_keep_workers_dev_while_the_api_stays_on_workers_dev_is_refused_naming_why(monkeypatch):
    # the route is declared, but public_base_url (the API's address when set) still names workers.dev
    doc = _doc(route=f"{DOMAIN}/*", zone_id=ZONE, keep_workers_dev=True)
    with pytest.raises(SpecError, match=r"api.public_base_url '?https://goldgate-api-staging\.[^ ]*workers\.dev'? "
                                        r"keeps it on workers.dev anyway: remove keep_workers_dev"):
        _warnings(doc, monkeypatch)
