"""The API Worker is told the stack's storage.result_ttl_days as the plain_text binding RESULT_TTL_DAYS, under
Pulumi mocks: the service's 404 result_missing says from it whether a result expired or was lost in the bucket."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from infra_harness import filled_stack_file, use_cloud
from test_infra_program import _bindings, _settings

from infra.program import read_config, run


@pytest.mark.parametrize(("stack", "days"), [("staging", 7), ("prod", 90)])
def test_the_worker_gets_the_stacks_result_ttl_days_as_a_plain_text_binding(stack, days, stacks_dir, tmp_path,
                                                                             bundle):
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    doc.setdefault("storage", {})["result_ttl_days"] = days
    cloud = use_cloud(stack, doc)
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return out.api.script.id.apply(lambda _: seen.update(bindings=_bindings(cloud)))

    program()
    assert seen["bindings"]["RESULT_TTL_DAYS"] == {"type": "plain_text", "name": "RESULT_TTL_DAYS",
                                                   "text": str(days)}
