"""A cloud stack upgraded from goldgate 69e15d2 (before the API's rate limits and Smart Placement): the stack file of
that day, unchanged, under today's program. What `pulumi up` would change is the Worker alone, in place: two Workers
Rate Limiting bindings, the two plain-text settings that name their limits to the service, and `placement: {mode:
smart}`. No resource is added, removed or renamed, and nothing else of the Worker, D1, R2 or the RunPod endpoint
changes, so no `pulumi up` after the `git pull` replaces where the jobs, results or GPU workers live.

tests/fixtures/review33_upgrade/declared_69e15d2.json holds that commit's stack specs (filled as infra_harness fills
them) and what its program declared for them under these mocks, each random id a token (test_infra_program_changes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from infra_harness import SECRETS
from test_infra_program_changes import changes, declared

YESTERDAY = Path(__file__).parents[1] / "fixtures" / "review33_upgrade" / "declared_69e15d2.json"
SCRIPT = "workersScript:WorkersScript"
ADDED = {"RATE_LIMIT_CREATE": ("ratelimit", {"limit": 600, "period": 60}),
         "RATE_LIMIT_INPUTS": ("ratelimit", {"limit": 600, "period": 60}),
         "CREATE_RATE_LIMIT_PER_MINUTE": ("plain_text", "600"),
         "INPUTS_RATE_LIMIT_PER_MINUTE": ("plain_text", "600")}


def _yesterday(stack: str) -> tuple[dict[str, Any], dict[tuple[str, str], tuple[dict[str, Any], bool, bool]]]:
    saved = json.loads(YESTERDAY.read_text())[stack]
    before = {tuple(key.split(" ", 1)): tuple(value) for key, value in saved["declared"].items()}
    return saved["spec"], before


def _by_name(bindings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in bindings}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_yesterdays_stack_file_under_todays_program_changes_only_the_workers_limits_and_placement(
        stack, stacks_dir, tmp_path, bundle):
    spec, before = _yesterday(stack)
    after = declared(stack, spec, SECRETS, stacks_dir, tmp_path, bundle)

    # Every resource kept its type and name, protect and retain (changes() asserts both); only the Worker changes.
    assert changes(before, after) == {SCRIPT: ["bindings", "placement"]}
    worker = (SCRIPT, f"{stack}-api")
    old, new = before[worker][0], after[worker][0]
    assert new["scriptName"] == old["scriptName"]  # the same script, updated in place
    assert (old.get("placement"), new["placement"]) == (None, {"mode": "smart"})

    old_bindings, new_bindings = _by_name(old["bindings"]), _by_name(new["bindings"])
    kept = {name: new_bindings.get(name) for name in old_bindings}
    assert kept == old_bindings  # every binding of yesterday's Worker, unchanged (its secrets, D1, R2, settings)
    added = {name: b for name, b in new_bindings.items() if name not in old_bindings}
    assert {name: (b["type"], b.get("simple") or b.get("text")) for name, b in added.items()} == ADDED
