"""A rotated secret's Pulumi key on a cloud stack (goldgate:webhookSecretPrevious, goldgate:apiTokenPrevious): one
`pulumi up` of the real program under mocks, and the stack files that refuse the key, as each rotation's tests use
them (test_review13_webhook_secret_previous_binding, test_review30_tok_api_token_previous_binding)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_harness import SECRETS, filled_stack_file, use_cloud

from goldgate.errors import SpecError
from infra.program import ProgramSettings, read_config, run


def _settings(stacks_dir: Path, tmp_path: Path) -> ProgramSettings:
    migrations = tmp_path / "migrations"
    migrations.mkdir(exist_ok=True)
    (migrations / "0001_init.sql").write_text("CREATE TABLE jobs (id TEXT PRIMARY KEY);\n")
    return ProgramSettings(stacks_dir=stacks_dir, migrations_dir=migrations)


def deploy(stack: str, secrets: dict[str, str], stacks_dir: Path, tmp_path: Path, bundle: Any) -> Any:
    """One `pulumi up` of the real program under mocks; the Worker script as Cloudflare would receive it."""
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    cloud = use_cloud(stack, doc, secrets)

    @pulumi.runtime.test
    def program():
        spec, stack_secrets, _ = read_config(stack)
        out = run(spec, stack_secrets, _settings(stacks_dir, tmp_path), bundle)
        return out.api.script.id

    program()
    return cloud.one("workersScript:WorkersScript")


def bindings(script: Any) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in script.inputs["bindings"]}


def refusal(secrets: dict[str, str]) -> str:
    """What reading the staging stack file with these (encrypted) secrets is refused with; nothing was declared."""
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc, secrets)
    with pytest.raises(SpecError) as err:
        read_config("staging")
    assert not cloud.registered
    return str(err.value)


def plain_text_refusal(key: str, value: str) -> str:
    """What reading the staging stack file is refused with when `key` was set to `value` without `--secret`."""
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc)
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **SECRETS, key: value},
                                  secret_keys=list(SECRETS))
    with pytest.raises(SpecError) as err:
        read_config("staging")
    assert not cloud.registered
    return str(err.value)
