"""api.zone_id only places api.route or api.custom_domain: given alone, `pulumi up` declared nothing with it and the
API stayed on its workers.dev URL, a setting the operator believed in and did not have. It is refused, by name,
before any resource is declared; with a route or a custom domain it is still taken."""

from __future__ import annotations

import pulumi
import pytest
from infra_harness import filled_stack_file, use_cloud
from test_infra_program import _settings

from goldgate.errors import SpecError
from infra.program import read_config, run

ZONE = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_zone_id_with_neither_route_nor_custom_domain_is_refused_before_anything_is_declared(
        stack, stacks_dir, tmp_path, bundle):
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    doc["api"]["zone_id"] = ZONE
    cloud = use_cloud(stack, doc)
    spec, secrets, _ = read_config(stack)
    with pytest.raises(SpecError) as err:
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    message = str(err.value)
    assert "goldgate:spec.api.zone_id" in message and "neither api.route nor api.custom_domain" in message
    assert "\n" not in message
    assert not cloud.registered


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
