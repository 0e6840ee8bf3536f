"""The API Worker's Cron Trigger for D1 retention, under Pulumi mocks: declared only for a stack that sets
database.retention, on that stack's own Worker, with the settings the scheduled handler reads as plain_text."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from infra_harness import ACCOUNT_ID, filled_stack_file, use_cloud
from test_infra_program import _bindings, _settings

from infra.program import read_config, run

RETENTION = {"staging": {"keep_days": 14, "cron": "*/30 * * * *"},
             "prod": {"keep_days": 30, "metrics_keep_days": 365, "cron": "30 3 * * *"}}


def _declare(stack: str, retention: dict[str, Any] | None, stacks_dir, tmp_path, bundle,
             storage: dict[str, Any] | None = None) -> tuple[Any, dict]:
    """The stack declared under mocks (with `retention` and `storage` set in its spec): (the cloud, the API
    Worker's bindings by name)."""
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    if retention is not None:
        doc["database"]["retention"] = retention
    doc.setdefault("storage", {}).update(storage or {})
    cloud = use_cloud(stack, doc)
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        waits = [out.api.script.id] + ([out.api.cron.id] if hasattr(out.api, "cron") else [])
        return pulumi.Output.all(*waits).apply(lambda _: seen.update(bindings=_bindings(cloud)))

    program()
    return cloud, seen["bindings"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_stack_with_retention_gets_a_cron_trigger_on_its_own_worker_and_the_other_stack_none(
        stack, stacks_dir, tmp_path, bundle):
    other = "prod" if stack == "staging" else "staging"
    cloud, bindings = _declare(stack, RETENTION[stack], stacks_dir, tmp_path, bundle)
    trigger = cloud.one("workersCronTrigger:WorkersCronTrigger")
    assert trigger.name == f"{stack}-api-retention" and "goldgate:api:Worker" in trigger.parent
    assert trigger.inputs == {"accountId": ACCOUNT_ID, "scriptName": f"goldgate-api-{stack}",
                              "schedules": [{"cron": RETENTION[stack]["cron"]}]}
    assert bindings["RETENTION_KEEP_DAYS"] == {"type": "plain_text", "name": "RETENTION_KEEP_DAYS",
                                              "text": str(RETENTION[stack]["keep_days"])}
    assert ("RETENTION_METRICS_KEEP_DAYS" in bindings) is (stack == "prod")
    if stack == "prod":
        assert bindings["RETENTION_METRICS_KEEP_DAYS"]["text"] == "365"

    cloud, bindings = _declare(other, None, stacks_dir, tmp_path, bundle)
    assert cloud.by_type("workersCronTrigger:WorkersCronTrigger") == []
    assert not any(name.startswith("RETENTION_") for name in bindings)
