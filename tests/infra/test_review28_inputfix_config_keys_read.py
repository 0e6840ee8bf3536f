"""The `goldgate:` keys a stack file may hold (goldgate.spec.CONFIG_KEYS, which load_pulumi holds every stack file
to) are exactly those the Pulumi program reads: a key the program starts to read, unlisted, would be refused in
every stack file that sets it; a listed key the program no longer reads would pass where it is a leftover. And the
program's own check of every stack file (`pulumi up`) refuses a mistyped key, naming it, not its value."""

from __future__ import annotations

import json

import pulumi
import pytest
import yaml
from infra_harness import SECRETS, filled_stack_file, use_cloud
from test_infra_program import _settings

from goldgate import spec as specs
from goldgate.errors import SpecError
from infra.program import read_config, run

# Every key the program reads, each set, so each path of read_config that reads one is taken.
EVERY = {**SECRETS, "goldgate:registryUsername": "robot$puller", "goldgate:registryPassword": "pw-9b8c7d6e5f4a",
         "goldgate:webhookSecretPrevious": "whsec-previous-7c1d2e3f4a5b",
         "goldgate:apiTokenPrevious": "api-token-previous-3e5a7c9b",
         "goldgate:clientTokens": json.dumps({"web-frontend": "client-token-web-frontend-0123456789abcdef"}),
         "goldgate:cloudflareApiBase": "https://api.cloudflare.com/client/v4",
         "goldgate:r2WritePermissionGroupId": "a" * 32, "goldgate:r2ReadPermissionGroupId": "b" * 32}
SECRET_KEYS = [k for k in EVERY if k.removeprefix("goldgate:") in specs.SECRET_CONFIG_KEYS]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_keys_a_stack_file_may_hold_are_the_keys_the_program_reads(stack, stacks_dir, tmp_path, bundle,
                                                                       monkeypatch):
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    doc["endpoint"]["manage_registry_credential"] = True
    use_cloud(stack, doc)
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **EVERY}, secret_keys=SECRET_KEYS)
    read: set[str] = set()
    full_key = pulumi.Config.full_key

    def recording(self: pulumi.Config, key: str) -> str:
        read.add(full_key(self, key))
        return full_key(self, key)

    monkeypatch.setattr(pulumi.Config, "full_key", recording)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return pulumi.Output.all(out.storage.migrations.id, out.api.script.id)

    program()
    ours = {key.removeprefix("goldgate:") for key in read if key.startswith("goldgate:")}
    assert ours == set(specs.CONFIG_KEYS), (sorted(ours - set(specs.CONFIG_KEYS)),
                                            sorted(set(specs.CONFIG_KEYS) - ours))
    assert set(EVERY) | {"goldgate:spec"} == {f"goldgate:{key}" for key in specs.CONFIG_KEYS}


def test_pulumi_up_refuses_a_stack_file_with_a_mistyped_key(stacks_dir, tmp_path, bundle):
    path = stacks_dir / "Pulumi.prod.yaml"
    file = yaml.safe_load(path.read_text())
    file["config"]["goldgate:runpodApikey"] = "rpa_PLAINTEXT0123456789"
    path.write_text(yaml.safe_dump(file))
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    use_cloud("staging", doc)
    spec, secrets, _ = read_config("staging")
    with pytest.raises(SpecError) as err:
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    message = str(err.value)
    assert "goldgate:runpodApikey (did you mean goldgate:runpodApiKey?) is not a key" in message, message
    assert str(path) in message and "PLAINTEXT" not in message
