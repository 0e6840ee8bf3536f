"""goldgate:cloudflareApiBase names the Cloudflare API of the whole stack: the provider that creates the bucket,
D1, the token and the Worker uses it as the D1 migrations do, instead of the migrations alone going there."""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pytest
from infra_harness import SECRETS, filled_stack_file, use_cloud
from test_infra_program import _settings

from infra.d1_migrations_provider import DEFAULT_CLOUDFLARE_API
from infra.program import read_config, run

EGRESS = "https://cf-egress.example.com/client/v4"


@pytest.mark.parametrize(("base", "provider_base"), [(None, None), (EGRESS, EGRESS)])
def test_every_cloudflare_call_of_the_stack_goes_to_the_api_it_names(base, provider_base, stacks_dir, tmp_path,
                                                                      bundle):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc)
    named = {"goldgate:cloudflareApiBase": base} if base else {}
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **SECRETS, **named}, secret_keys=list(SECRETS))

    @pulumi.runtime.test
    def program():
        spec, secrets, settings = read_config("staging")
        stack_settings = dataclasses.replace(_settings(stacks_dir, tmp_path),
                                             cloudflare_api_base=settings.cloudflare_api_base)
        out = run(spec, secrets, stack_settings, bundle)
        return pulumi.Output.all(out.storage.migrations.id, out.api.script.id).apply(lambda _: check())

    def check() -> None:
        provider = cloud.one("providers:cloudflare")
        migrations = cloud.one("cloudflare:D1Migrations")
        assert migrations.inputs["api_base"] == (base or DEFAULT_CLOUDFLARE_API)
        # At the default the provider is left as it was declared before the setting existed (no provider change).
        assert provider.inputs.get("baseUrl") == provider_base

    program()
