"""A secret copied from one stack file into the other is refused under a previous key too: PROD's
goldgate:apiTokenPrevious holding STAGING's encrypted goldgate:apiToken (a `secure:` line copied over, which a
passphrase secrets provider with the copied salt decrypts) lets every STAGING client call PROD's API, as PROD's
goldgate:webhookSecretPrevious holding STAGING's webhookSecret lets STAGING's key sign PROD's webhooks and result URLs.
Before, the copied-secret guardrail compared only apiToken with apiToken and webhookSecret with webhookSecret across
stack files: both previous keys were deployed without a word."""

from __future__ import annotations

import pulumi
import pytest
from infra_harness import SECRETS, filled_stack_file, use_cloud
from test_infra_policies import _stack_args, violations
from test_infra_program import _settings
from test_infra_stack_separation import _encrypted

from infra.policies import STACKS_SHARE_NOTHING, GuardrailError
from infra.program import read_config, run

COPIED = "v1:Y29waWVk:c3RhZ2luZw=="  # the one ciphertext both stack files hold
STAGING = {"apiToken": "v1:c3Rn:dG9r", "webhookSecret": "v1:c3Rn:d2hz"}
PROD = {"apiToken": "v1:cHJk:dG9r", "webhookSecret": "v1:cHJk:d2hz"}
# While a rotation is under way the program also reads the previous values it binds (their decrypted stand-ins).
ROTATING = {**SECRETS, "goldgate:apiTokenPrevious": "api-token-previous-4c9e2a7d",
            "goldgate:webhookSecretPrevious": "whsec-previous-7d1e0b93c4a2"}


def _deploy(stack: str, stacks_dir, tmp_path, bundle) -> tuple[str | None, object]:
    """One `pulumi up` of `stack` under mocks: the guardrail's message (None: it deployed) and the cloud."""
    cloud = use_cloud(stack, filled_stack_file(stack)["config"]["goldgate:spec"], ROTATING)
    spec, secrets, _ = read_config(stack)
    try:
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    except GuardrailError as err:
        return str(err), cloud
    return None, cloud


# (what PROD's file holds, what STAGING's holds, the holders named, the way out named)
COPIES = [
    ({"apiTokenPrevious": COPIED}, {"apiToken": COPIED},
     "prod's goldgate:apiTokenPrevious and staging's goldgate:apiToken",
     "`pulumi config rm goldgate:apiTokenPrevious --stack prod`"),
    ({"webhookSecretPrevious": COPIED}, {"webhookSecret": COPIED},
     "prod's goldgate:webhookSecretPrevious and staging's goldgate:webhookSecret",
     "`pulumi config rm goldgate:webhookSecretPrevious --stack prod`"),
    ({"apiTokenPrevious": COPIED}, {"apiTokenPrevious": COPIED},
     "prod's goldgate:apiTokenPrevious and staging's goldgate:apiTokenPrevious",
     "`pulumi config rm goldgate:apiTokenPrevious --stack prod`"),
    ({"apiTokenPrevious": COPIED}, {"webhookSecret": COPIED},  # STAGING's webhook key as PROD's old token
     "prod's goldgate:apiTokenPrevious and staging's goldgate:webhookSecret",
     "`pulumi config rm goldgate:apiTokenPrevious --stack prod`"),
]


@pytest.mark.parametrize(("prod", "staging", "held", "way_out"), COPIES)
def test_prod_refuses_a_previous_key_holding_a_secret_copied_from_staging(prod, staging, held, way_out, stacks_dir,
                                                                         tmp_path, bundle):
    _encrypted(stacks_dir, "staging", {**STAGING, **staging})
    _encrypted(stacks_dir, "prod", {**PROD, **prod})
    message, cloud = _deploy("prod", stacks_dir, tmp_path, bundle)
    assert message is not None, "PROD deployed with a secret STAGING's file holds"
    assert f"stacks prod and staging share a secret (copied from one stack file into the other): {held}" in message
    assert way_out in message and "Y29waWVk" not in message  # never the ciphertext
    assert not cloud.registered
    # The policy pack refuses either stack's `pulumi up` for it too (naming a way out in one of the two).
    for stack in ("staging", "prod"):
        found = violations(STACKS_SHARE_NOTHING, _stack_args(stack, [], stacks_dir))
        assert any(held in m and "pulumi config rm goldgate:" in m for m in found), found


def test_each_stack_deploys_with_its_own_previous_secrets_and_staging_not_with_prods_token_as_one(
        stacks_dir, tmp_path, bundle):
    own = {"apiTokenPrevious": "v1:c3Rn:b2xkdG9r", "webhookSecretPrevious": "v1:c3Rn:b2xkd2hz"}
    _encrypted(stacks_dir, "prod", {**PROD, "apiToken": COPIED, "apiTokenPrevious": "v1:cHJk:b2xkdG9r",
                                    "webhookSecretPrevious": "v1:cHJk:b2xkd2hz"})
    doc = _encrypted(stacks_dir, "staging", {**STAGING, **own})
    cloud = use_cloud("staging", doc, ROTATING)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("staging")
        return run(spec, secrets, _settings(stacks_dir, tmp_path), bundle).api.script.id

    program()  # a rotation under way in both stacks, each with its own values: nothing shared
    assert cloud.one("workersScript:WorkersScript")
    assert violations(STACKS_SHARE_NOTHING, _stack_args("prod", [], stacks_dir)) == []

    _encrypted(stacks_dir, "staging", {**STAGING, **own, "apiTokenPrevious": COPIED})  # PROD's token copied in
    message, cloud = _deploy("staging", stacks_dir, tmp_path, bundle)
    assert message is not None and "prod's goldgate:apiToken and staging's goldgate:apiTokenPrevious" in message
    assert "`pulumi config rm goldgate:apiTokenPrevious --stack staging`" in message
    assert not cloud.registered
