"""With api.custom_domain set, the API's address (RunPod's webhooks, the result URLs status hands out) is
https://<custom_domain>, and api.public_base_url is not used. A stack file giving both with different hosts had
its public_base_url ignored without a word, though its operator may be handing that address to clients. `pulumi up`
now names it in one warning line; it does not refuse (the API works, at the custom domain). The same host in both
is no warning."""

from __future__ import annotations

import pulumi
import pytest
from infra_harness import filled_stack_file, use_cloud
from test_infra_program import _settings

from infra.program import read_config, run

DOMAIN = "api-staging.example.com"
ZONE = "0123456789abcdef0123456789abcdef"


def _warnings(base_url: str, stacks_dir, tmp_path, bundle, monkeypatch) -> tuple[list[str], object]:
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["api"].update(custom_domain=DOMAIN, zone_id=ZONE, public_base_url=base_url)
    cloud = use_cloud("staging", doc)
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **kw: warned.append(message))

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("staging")
        return run(spec, secrets, _settings(stacks_dir, tmp_path), bundle).api.script.id

    program()
    return warned, cloud


def test_a_public_base_url_on_another_host_than_the_custom_domain_is_named_in_a_warning(
        stacks_dir, tmp_path, bundle, monkeypatch):
    warned, cloud = _warnings("https://goldgate-api-staging.team.workers.dev", stacks_dir, tmp_path, bundle,
                              monkeypatch)
    (message,) = {m for m in warned if "public_base_url" in m}
    assert "goldgate-api-staging.team.workers.dev" in message and "is not used" in message
    assert f"https://{DOMAIN}" in message and "\n" not in message
    assert cloud.one("workersCustomDomain:WorkersCustomDomain").inputs["hostname"] == DOMAIN


@pytest.mark.parametrize("base_url", [f"https://{DOMAIN}", f"https://{DOMAIN.upper()}:443/"])
def test_a_public_base_url_naming_the_custom_domain_is_no_warning(base_url, stacks_dir, tmp_path, bundle,
                                                                   monkeypatch):
    warned, _ = _warnings(base_url, stacks_dir, tmp_path, bundle, monkeypatch)
    assert not [m for m in warned if "public_base_url" in m], warned
