"""Review 30 mutation audit (mut30): the program's refusal of unset secrets reads as a sentence for one secret and
for several: "secret goldgate:apiToken is not set ... Set it" and "secrets goldgate:a, goldgate:b are not set ...
Set each", each key named with its namespace, as `pulumi config set` takes it."""

from __future__ import annotations

import pytest
from infra_harness import SECRETS, filled_stack_file, use_cloud

from goldgate.errors import SpecError
from infra.program import read_config


def _refusal(stack: str, unset: set[str]) -> str:
    use_cloud(stack, filled_stack_file(stack)["config"]["goldgate:spec"],
              {k: v for k, v in SECRETS.items() if k not in unset})
    with pytest.raises(SpecError) as err:
        read_config(stack)
    return str(err.value).splitlines()[0]


def test_one_unset_secret_is_named_in_the_singular() -> None:
    said = _refusal("prod", {"goldgate:apiToken"})
    assert said.startswith("stack prod: secret goldgate:apiToken is not set (or empty). Set it encrypted"), said


def test_two_unset_secrets_are_named_in_the_plural() -> None:
    said = _refusal("staging", {"goldgate:apiToken", "goldgate:webhookSecret"})
    assert said.startswith("stack staging: secrets goldgate:"), said
    assert " are not set (or empty). Set each encrypted" in said, said
    assert "goldgate:apiToken" in said and "goldgate:webhookSecret" in said, said
