"""A cloud stack whose last client was revoked as the runbook says (`pulumi config rm --path
'goldgate:clientTokens.<name>'`): pulumi leaves `goldgate:clientTokens: {}` in the stack file, an empty object that is
no secret. It holds no token, so neither goldgate nor the program may refuse it as a secret in plain text (which sent
the operator to rotate a token that no longer exists); and a client token that is in plain text is refused naming the
command that sets one client's token, not one that would replace every client with a single string."""

from __future__ import annotations

import json

import pulumi
import yaml
from infra_harness import SECRETS, filled_stack_file, use_cloud

from goldgate import spec as specs
from goldgate.errors import SpecError
from infra.program import read_config

KEY = "goldgate:clientTokens"
BOB = "client-token-bob-0123456789abcdefghijkl"


def test_a_stack_file_whose_last_client_was_removed_loads(tmp_path):
    doc = filled_stack_file("prod")
    doc["config"][KEY] = {}  # what `pulumi config rm --path 'goldgate:clientTokens.<last>'` leaves
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))
    assert specs.load_pulumi("prod", tmp_path).name == "prod"


def test_the_program_takes_an_emptied_client_object_as_no_client():
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    use_cloud("staging", doc)
    # an empty object holds no secure value: pulumi hands it to the program as plain config
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **SECRETS, KEY: "{}"}, secret_keys=list(SECRETS))
    _, secrets, _ = read_config("staging")
    assert secrets.client_tokens is None


def test_a_plain_text_client_token_is_refused_naming_the_per_client_command(tmp_path):
    doc = filled_stack_file("staging")
    doc["config"][KEY] = {"alice": {"secure": "v1:abc"}, "bob": BOB}
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc))
    try:
        specs.load_pulumi("staging", tmp_path)
    except SpecError as exc:
        said = str(exc)
    else:
        raise AssertionError("a client token in plain text was taken")
    assert f"pulumi config set --secret --path '{KEY}.<name>' --stack staging" in said, said
    assert BOB not in said
