"""A newcomer's first `pulumi preview` with the committed stack file, before step 3 of docs/CLOUD.md. The Pulumi engine
decrypts every `secure:` value before it starts the language host ("failed to decrypt config: ..." otherwise), which
hands the program plaintext only (PULUMI_CONFIG, and the secret keys' names in PULUMI_CONFIG_SECRET_KEYS): a value that
is no ciphertext of the stack's secrets provider (the passphrase provider's `v1:<nonce>:<ciphertext>`, base64 from
Pulumi Cloud or a KMS) stops the CLI with its own error, and the program never runs. So the shipped files hold no
`secure:` placeholder, and goldgate's program itself refuses a missing secret, naming the whole command that sets
each one."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_harness import ACCOUNT_ID, SECRETS, digest_ref, filled_stack_file, use_cloud

from goldgate.errors import SpecError
from goldgate.spec import STACKS_DIR, read_yaml
from infra.program import read_config

MAIN = Path(__file__).resolve().parents[2] / "infra" / "__main__.py"
# What a secrets provider can decrypt at all: the passphrase provider's `v1:<nonce>:<ciphertext>`, or the base64 of
# the bytes Pulumi Cloud or a KMS made. Anything else fails in the CLI ("<SET_WITH: ...>" is neither).
_CIPHERTEXT = re.compile(r"v1:[A-Za-z0-9+/]+=*:[A-Za-z0-9+/]+=*|[A-Za-z0-9+/]{16,}=*")
COMMANDS = {
    "goldgate:runpodApiKey": 'printf %s "$RUNPOD_API_KEY" | pulumi config set --secret goldgate:runpodApiKey',
    "goldgate:cloudflareApiToken":
        'printf %s "$CLOUDFLARE_API_TOKEN" | pulumi config set --secret goldgate:cloudflareApiToken',
    "goldgate:webhookSecret": "openssl rand -hex 32 | pulumi config set --secret goldgate:webhookSecret",
    "goldgate:apiToken": "openssl rand -hex 32 | pulumi config set --secret goldgate:apiToken",
}


def as_the_cli_hands_it_over(stack: str) -> dict[str, Any]:
    """The committed stack file's config as the Pulumi CLI passes it to the program, or a failure where the CLI
    itself would stop (a `secure:` value no provider can decrypt). Step 2's placeholders are filled in, as a
    newcomer does before the first preview."""
    config = read_yaml(STACKS_DIR / f"Pulumi.{stack}.yaml")["config"]
    for key, value in config.items():
        if isinstance(value, dict) and "secure" in value and not _CIPHERTEXT.fullmatch(str(value["secure"])):
            pytest.fail(f"stacks/Pulumi.{stack}.yaml: {key} is `secure: {value['secure']!r}`, which is no ciphertext: "
                        "the Pulumi CLI fails to decrypt it before the program runs, so goldgate's own refusal of an "
                        "unset secret is never reached")
    return {key: value for key, value in config.items() if key != "goldgate:spec"}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_committed_stack_file_reaches_the_programs_refusal_naming_each_command(stack):
    secrets = as_the_cli_hands_it_over(stack)
    assert not secrets   # none is set before step 3
    spec = filled_stack_file(stack)["config"]["goldgate:spec"]
    assert spec["cloud"]["cloudflare_account_id"] == ACCOUNT_ID and spec["image"] == digest_ref("release-1")
    use_cloud(stack, spec, {})
    # What `pulumi preview` shows: the program's RunError, its message alone (infra/__main__.py).
    with pytest.raises(pulumi.RunError) as err:
        runpy.run_path(str(MAIN), run_name="__main__")
    message = str(err.value)
    for key, command in COMMANDS.items():
        assert f"{command} --stack {stack}" in message, (key, message)
    assert err.value.__cause__ is None


@pytest.mark.parametrize("key", sorted(COMMANDS))
def test_one_missing_secret_is_named_with_its_own_command_alone(key):
    use_cloud("staging", filled_stack_file("staging")["config"]["goldgate:spec"],
              {k: v for k, v in SECRETS.items() if k != key})
    with pytest.raises(SpecError) as err:
        read_config("staging")
    message = str(err.value)
    assert f"{COMMANDS[key]} --stack staging" in message
    assert [k for k in COMMANDS if k != key and k in message] == []
    assert not [v for v in SECRETS.values() if v in message]   # never a value of the secrets that are set


def test_a_blank_secret_counts_as_missing_and_names_its_command():
    use_cloud("prod", filled_stack_file("prod")["config"]["goldgate:spec"],
              {**SECRETS, "goldgate:apiToken": "   "})
    with pytest.raises(SpecError, match=re.escape(f"{COMMANDS['goldgate:apiToken']} --stack prod")):
        read_config("prod")


def test_a_managed_registry_login_left_half_set_names_the_command_for_the_missing_half():
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["endpoint"]["manage_registry_credential"] = True
    use_cloud("staging", doc, {**SECRETS, "goldgate:registryUsername": "robot$puller"})
    with pytest.raises(SpecError) as err:
        read_config("staging")
    message = str(err.value)
    assert ('printf %s "$REGISTRY_PASSWORD" | pulumi config set --secret goldgate:registryPassword --stack staging'
            in message), message
    assert "robot$puller" not in message and "registryUsername --stack" not in message

