"""Mutation audit (session 29): a stack file copied with STAGING's encrypted webhook secret is refused as one copied
with its API token is (the key would sign PROD's webhooks): the per-stack secrets are both named."""

from __future__ import annotations

import pytest
from infra_harness import use_cloud
from test_infra_program import _settings
from test_infra_stack_separation import _encrypted

from infra.policies import GuardrailError
from infra.program import read_config, run


def test_a_stack_file_copied_with_stagings_webhook_secret_is_refused(stacks_dir, tmp_path, bundle) -> None:
    _encrypted(stacks_dir, "staging", {"apiToken": "v1:c3Rn:b25l", "webhookSecret": "v1:c2hhcmVk:c2FtZQ=="})
    cloud = use_cloud("prod", _encrypted(stacks_dir, "prod", {"apiToken": "v1:cHJk:dHdv",
                                                             "webhookSecret": "v1:c2hhcmVk:c2FtZQ=="}))
    spec, secrets, _ = read_config("prod")
    with pytest.raises(GuardrailError) as err:
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    message = str(err.value)
    assert "stacks prod and staging hold the same encrypted goldgate:webhookSecret" in message, message
    assert "c2hhcmVk" not in message
    assert not cloud.registered
