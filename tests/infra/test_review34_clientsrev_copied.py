"""Review of named client tokens on the cloud: a client's token copied from one stack file into the other (a `secure:`
line of goldgate:clientTokens.<name>, which a passphrase secrets provider with the copied salt decrypts) is refused
as the API token copied is: STAGING's client would open PROD's API. Before, the copied-secret guardrail looked at the
operator's four keys alone, and PROD deployed with STAGING's client token, or with STAGING's API token as a client's."""

from __future__ import annotations

import pytest
import yaml
from infra_harness import filled_stack_file
from test_infra_policies import _stack_args, violations
from test_review30_tok2_copied_previous_secrets import PROD, STAGING

from infra.policies import STACKS_SHARE_NOTHING, copied_secret_violations

COPIED = "v1:Y29waWVk:Y2xpZW50"  # the one ciphertext both stack files hold


def _stack_file(stacks_dir, stack: str, secrets: dict[str, str], clients: dict[str, str]) -> None:
    doc = filled_stack_file(stack)
    doc["config"].update({f"goldgate:{key}": {"secure": value} for key, value in secrets.items()})
    if clients:
        doc["config"]["goldgate:clientTokens"] = {name: {"secure": value} for name, value in clients.items()}
    (stacks_dir / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize(("prod", "staging", "said"), [
    ({"clients": {"web": COPIED}}, {"clients": {"web": COPIED}},
     "stacks prod and staging hold the same encrypted goldgate:clientTokens.web (a copied stack file)"),
    ({"clients": {"partner": COPIED}}, {"clients": {"web": COPIED}},
     "prod's goldgate:clientTokens.partner and staging's goldgate:clientTokens.web hold the same encrypted value"),
    ({"clients": {"web": COPIED}}, {"secrets": {"apiToken": COPIED}},
     "prod's goldgate:clientTokens.web and staging's goldgate:apiToken hold the same encrypted value"),
])
def test_a_client_token_copied_between_the_stack_files_is_refused_naming_both_and_a_way_out(stacks_dir, prod,
                                                                                           staging, said):
    _stack_file(stacks_dir, "staging", {**STAGING, **staging.get("secrets", {})}, staging.get("clients", {}))
    _stack_file(stacks_dir, "prod", {**PROD, **prod.get("secrets", {})}, prod.get("clients", {}))
    (found,) = copied_secret_violations(stacks_dir, "prod")
    assert said in found, found
    assert "pulumi config set --secret" in found and "--stack prod" in found and "Y29waWVk" not in found
    if "clientTokens" in found.rsplit("`openssl", 1)[1]:
        assert "--path goldgate:clientTokens." in found
    for stack in ("staging", "prod"):  # the policy pack refuses either stack's `pulumi up` too
        assert any(said in m for m in violations(STACKS_SHARE_NOTHING, _stack_args(stack, [], stacks_dir)))


def test_each_stacks_own_client_tokens_are_no_violation(stacks_dir):
    _stack_file(stacks_dir, "staging", STAGING, {"web": "v1:c3Rn:d2Vi", "app": "v1:c3Rn:YXBw"})
    _stack_file(stacks_dir, "prod", PROD, {"web": "v1:cHJk:d2Vi"})
    assert copied_secret_violations(stacks_dir) == []
