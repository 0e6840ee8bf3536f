"""A secret the engine reads as plain text may come from a Pulumi ESC environment the stack imports, not the file:
the refusal names both places and how each marks a secret (`pulumi config set --secret`, `fn::secret`)."""

from __future__ import annotations

import json

import pulumi
import pytest
from infra_harness import SECRETS, filled_stack_file, use_cloud

from goldgate.errors import SpecError
from infra.program import read_config


def test_a_plain_secret_is_refused_naming_the_stack_file_and_an_esc_environment() -> None:
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    cloud = use_cloud("prod", doc)
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **SECRETS},
                                  secret_keys=[k for k in SECRETS if k != "goldgate:apiToken"])
    with pytest.raises(SpecError) as err:
        read_config("prod")
    said = str(err.value)
    assert "goldgate:apiToken is stored in plain text" in said
    assert "Pulumi ESC environment" in said and "fn::secret" in said and "pulumi config set --secret" in said
    assert SECRETS["goldgate:apiToken"] not in said
    assert not cloud.registered
