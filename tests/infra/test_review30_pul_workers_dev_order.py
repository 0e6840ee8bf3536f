"""A stack's switch from workers.dev to a custom domain or route: `pulumi up` turns workers.dev off only once the new
address exists. Nothing but an explicit dependency orders the two (both hang off the script alone), and the engine
runs independent steps at once, so the API could be left answering at neither address, RunPod's webhooks lost."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from infra_harness import SECRETS, Cloud, RecordingMonitor, filled_stack_file
from test_infra_program import _settings

from infra.program import read_config, run

ZONE_ID = "0123456789abcdef0123456789abcdef"


class DependencyMonitor(RecordingMonitor):
    """The recording monitor, also keeping each resource's URN and the URNs it waits for (what the engine orders
    its steps by)."""

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.urns: dict[str, str] = {}
        self.waits_for: dict[str, set[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.urns[request.name] = response.urn
        self.waits_for[request.name] = set(request.dependencies)
        return response


def declare(stack: str, api: dict[str, Any], stacks_dir, tmp_path, bundle) -> DependencyMonitor:
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    doc["api"].update(api)
    cloud = Cloud(stack)
    monitor = DependencyMonitor(cloud)
    pulumi.runtime.set_mocks(cloud, project="goldgate", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **SECRETS}, secret_keys=list(SECRETS))

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return pulumi.Output.all(out.api.subdomain.id, out.api.script.id).apply(lambda _: None)

    program()
    return monitor


@pytest.mark.parametrize("stack, api, address", [
    ("prod", {"custom_domain": "api.example.com", "zone_id": ZONE_ID}, "prod-api-domain"),
    ("staging", {"route": "staging-api.example.com/*", "zone_id": ZONE_ID}, "staging-api-route"),
])
def test_workers_dev_is_turned_off_only_after_the_new_address_exists(stack, api, address, stacks_dir, tmp_path,
                                                                    bundle):
    monitor = declare(stack, {"public_base_url": None, **api}, stacks_dir, tmp_path, bundle)
    subdomain = f"{stack}-api-workers-dev"
    assert monitor.urns[address] in monitor.waits_for[subdomain], (
        f"{subdomain} (workers.dev off) does not wait for {address}")
