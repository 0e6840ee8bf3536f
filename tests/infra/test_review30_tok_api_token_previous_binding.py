"""Rotating the API token on a cloud stack: goldgate:apiTokenPrevious (a Pulumi secret) becomes the API Worker's
API_TOKEN_PREVIOUS binding, which the Worker still accepts as a bearer token, so clients holding the old token are
served while they move to the new one. Before, no such key existed (the stack file refused it as unknown) and a new
apiToken answered every client still holding the old one 401. The key is refused, by name and never by value,
wherever the Worker would refuse it; once removed, the next `pulumi up` declares no such binding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_harness import (
    SECRETS,
    filled_stack_file,
    is_wire_secret,
    secret_lengths_the_program_and_worker_disagree_on,
    use_cloud,
)

from goldgate.errors import SpecError
from infra.program import ProgramSettings, read_config, run

KEY = "goldgate:apiTokenPrevious"
PREVIOUS = "api-token-previous-4c9e2a7d"
WHS_PREVIOUS = "whsec-previous-7d1e0b93c4a2"
SAME_AS_A_WEBHOOK_SECRET = f"{KEY} holds the same value as goldgate:webhookSecret or goldgate:webhookSecretPrevious"


def _settings(stacks_dir: Path, tmp_path: Path) -> ProgramSettings:
    migrations = tmp_path / "migrations"
    migrations.mkdir(exist_ok=True)
    (migrations / "0001_init.sql").write_text("CREATE TABLE jobs (id TEXT PRIMARY KEY);\n")
    return ProgramSettings(stacks_dir=stacks_dir, migrations_dir=migrations)


def _deploy(stack: str, secrets: dict[str, str], stacks_dir: Path, tmp_path: Path, bundle: Any) -> Any:
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


def _bindings(script: Any) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in script.inputs["bindings"]}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_rotation_binds_the_previous_token_and_its_end_removes_the_binding(stack, stacks_dir, tmp_path, bundle):
    during = _deploy(stack, {**SECRETS, KEY: PREVIOUS}, stacks_dir, tmp_path, bundle)
    bound = _bindings(during)
    assert bound["API_TOKEN_PREVIOUS"] == {"type": "secret_text", "name": "API_TOKEN_PREVIOUS", "text": PREVIOUS}
    assert bound["API_TOKEN"]["text"] == SECRETS["goldgate:apiToken"]  # the current one is served on
    assert is_wire_secret(during.wire["bindings"])  # sent and stored encrypted, as the other secrets
    assert PREVIOUS not in json.dumps({k: v for k, v in during.wire.items() if k != "bindings"})

    # `pulumi config rm goldgate:apiTokenPrevious` and `pulumi up`: the script is uploaded without it.
    after = _deploy(stack, SECRETS, stacks_dir, tmp_path, bundle)
    assert set(_bindings(after)) == set(bound) - {"API_TOKEN_PREVIOUS"}


def test_a_blank_previous_token_is_no_rotation(stacks_dir, tmp_path, bundle):
    # The Worker takes an empty binding for none; a blank config value declares none rather than an empty secret.
    blank = _deploy("staging", {**SECRETS, KEY: "  "}, stacks_dir, tmp_path, bundle)
    rotating = _deploy("staging", {**SECRETS, KEY: PREVIOUS}, stacks_dir, tmp_path, bundle)
    assert set(_bindings(rotating)) - set(_bindings(blank)) == {"API_TOKEN_PREVIOUS"}


@pytest.mark.parametrize(("value", "says"), [
    ("api-token-short", f"{KEY} is shorter than 16 characters"),
    (SECRETS["goldgate:apiToken"], f"{KEY} and goldgate:apiToken hold the same value"),
    (SECRETS["goldgate:webhookSecret"], SAME_AS_A_WEBHOOK_SECRET),
    (WHS_PREVIOUS, SAME_AS_A_WEBHOOK_SECRET),
])
def test_a_previous_token_the_api_worker_would_refuse_is_refused_without_echoing_it(value, says):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc, {**SECRETS, "goldgate:webhookSecretPrevious": WHS_PREVIOUS, KEY: value})
    with pytest.raises(SpecError) as err:
        read_config("staging")
    said = str(err.value)
    assert says in said and f"pulumi config rm {KEY} --stack staging" in said, said
    assert value not in said and not cloud.registered


def test_a_previous_token_set_without_secret_is_refused_without_echoing_it():
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc)
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **SECRETS, KEY: PREVIOUS},
                                  secret_keys=list(SECRETS))
    with pytest.raises(SpecError) as err:
        read_config("staging")
    assert f"{KEY} is stored in plain text" in str(err.value) and "pulumi config set --secret" in str(err.value)
    assert PREVIOUS not in str(err.value) and not cloud.registered


def test_the_shortest_previous_token_the_program_accepts_is_one_the_api_worker_accepts():
    assert secret_lengths_the_program_and_worker_disagree_on(KEY, "api_token_previous", "t") == []
