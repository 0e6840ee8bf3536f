"""The API Worker is told the stack's storage.result_ttl_days as the plain_text binding RESULT_TTL_DAYS, under
Pulumi mocks: the service's 404 result_missing says from it whether a result expired or was lost in the bucket."""

from __future__ import annotations

import pytest
from test_infra_retention_cron import _declare


@pytest.mark.parametrize(("stack", "days"), [("staging", 7), ("prod", 90)])
def test_the_worker_gets_the_stacks_result_ttl_days_as_a_plain_text_binding(stack, days, stacks_dir, tmp_path,
                                                                             bundle):
    _, bindings = _declare(stack, None, stacks_dir, tmp_path, bundle, storage={"result_ttl_days": days})
    assert bindings["RESULT_TTL_DAYS"] == {"type": "plain_text", "name": "RESULT_TTL_DAYS", "text": str(days)}
