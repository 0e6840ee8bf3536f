"""storage.backup_retention_days: how long the D1 backups are kept (R2's lifecycle rule, the local drill's prune),
validated like the other storage fields and refused, naming the field, when malformed or too short to be safe."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64
FIELD = "goldgate:spec.storage.backup_retention_days"


def cloud_doc(stack: str, days: Any) -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load((specs.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]["goldgate:spec"])
    doc["image"] = DIGEST
    doc["storage"]["backup_retention_days"] = days
    return doc


def test_the_shipped_stacks_keep_backups_longer_than_d1_time_travel():
    # Time Travel reaches 30 days back; the backups are what reaches further.
    for stack in ("staging", "prod"):
        assert specs.load_pulumi(stack).storage.backup_retention_days == specs.DEFAULT_BACKUP_RETENTION_DAYS > 30
        assert specs.load_local(stack).storage.backup_retention_days == specs.DEFAULT_BACKUP_RETENTION_DAYS


def test_a_window_is_read_from_the_stack_file():
    assert specs.from_pulumi_config("prod", cloud_doc("prod", 365)).storage.backup_retention_days == 365
    assert specs.from_pulumi_config("staging", cloud_doc("staging", 7)).storage.backup_retention_days == 7


@pytest.mark.parametrize(("days", "said"), [
    ("30", "expected an integer, got '30'"),
    (30.5, "expected an integer, got 30.5"),
    (True, "expected an integer, got True"),
    ([30], "expected an integer"),
    (3651, "3651 is above the maximum 3650"),
    # R2 deletes by age alone, the newest backup too: a day or two of failed drills would leave none
    (1, "1 is below 7: R2's lifecycle rule deletes a backup by its age alone, the newest too"),
    (0, "0 is below 7"),
    (-30, "-30 is below 7"),
])
def test_a_malformed_or_unsafe_window_is_refused_naming_the_field(days, said):
    with pytest.raises(SpecError) as err:
        specs.from_pulumi_config("prod", cloud_doc("prod", days))
    assert f"{FIELD}: {said}" in str(err.value)


def test_a_misspelt_field_is_refused_not_ignored():
    doc = cloud_doc("prod", None)
    doc["storage"]["backup_retention"] = 30
    with pytest.raises(SpecError, match=r"goldgate:spec\.storage: unknown field\(s\) backup_retention"):
        specs.from_pulumi_config("prod", doc)
