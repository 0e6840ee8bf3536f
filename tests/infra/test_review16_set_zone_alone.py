"""api.zone_id only places api.route or api.custom_domain: given alone, `pulumi up` declared nothing with it and the
API stayed on its workers.dev URL, a setting the operator believed in and did not have, without a word. `pulumi up`
now says so in one warning line, naming it; it does not refuse (a stack file that always carried it deployed before,
and a rollback during an incident must not fail over a setting that changes nothing). With a route or a custom
domain it is taken."""

from __future__ import annotations

import pulumi
import pytest
from infra_harness import filled_stack_file, use_cloud
from test_infra_program import _settings

from infra.program import read_config, run

ZONE = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_zone_id_with_neither_route_nor_custom_domain_is_named_in_a_warning_and_deploys_as_before(
        stack, stacks_dir, tmp_path, bundle, monkeypatch):
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    doc["api"]["zone_id"] = ZONE
    cloud = use_cloud(stack, doc)
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **kw: warned.append(message))

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        return run(spec, secrets, _settings(stacks_dir, tmp_path), bundle).api.script.id

    program()
    (message,) = [m for m in warned if "zone_id" in m]  # once: the component's own check does not warn again
    assert "goldgate:spec.api.zone_id" in message and "neither api.route nor api.custom_domain" in message
    assert "\n" not in message
    assert cloud.registered and not [r for r in cloud.registered.values() if "zoneId" in (r.inputs or {})]


@pytest.mark.parametrize(("api", "resource"), [
    ({"route": "api-staging.example.com/*"}, "workersRoute:WorkersRoute"),
    ({"custom_domain": "api-staging.example.com", "public_base_url": None},
     "workersCustomDomain:WorkersCustomDomain"),
])
def test_a_zone_id_beside_what_it_places_is_declared_on_it(api, resource, stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["api"].update(api, zone_id=ZONE)
    doc["api"] = {k: v for k, v in doc["api"].items() if v is not None}
    cloud = use_cloud("staging", doc)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("staging")
        return run(spec, secrets, _settings(stacks_dir, tmp_path), bundle).api.script.id

    program()
    assert cloud.one(resource).inputs["zoneId"] == ZONE
