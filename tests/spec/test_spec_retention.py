"""database.retention: what the API Worker's Cron Trigger prunes, held to the rules `goldgate prune` applies, with a
cron expression Cloudflare accepts; absent, a stack has no cron (as before)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64


def cloud_doc(stack: str, retention: Any) -> dict[str, Any]:
    doc = copy.deepcopy(yaml.safe_load((specs.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]["goldgate:spec"])
    doc["image"] = DIGEST
    doc["database"]["retention"] = retention
    return doc


def refusal(retention: Any, stack: str = "staging") -> str:
    with pytest.raises(SpecError) as err:
        specs.from_pulumi_config(stack, cloud_doc(stack, retention))
    return str(err.value)


def test_the_shipped_stacks_set_no_retention_so_nothing_is_pruned_by_itself():
    for stack in ("staging", "prod"):
        assert specs.load_pulumi(stack).database.retention is None
    assert specs.from_pulumi_config("prod", cloud_doc("prod", None)).database.retention is None


def test_a_retention_block_is_read_with_its_cron_and_optional_metrics_period():
    spec = specs.from_pulumi_config("prod", cloud_doc("prod", {"keep_days": 30, "metrics_keep_days": 365,
                                                               "cron": " 30  3 * * * "}))
    assert spec.database.retention == specs.RetentionSpec(keep_days=30, cron="30 3 * * *", metrics_keep_days=365)
    staging = specs.from_pulumi_config("staging", cloud_doc("staging", {"keep_days": 7, "cron": "*/30 * * * MON-FRI"}))
    assert staging.database.retention == specs.RetentionSpec(keep_days=7, cron="*/30 * * * MON-FRI")


@pytest.mark.parametrize(("retention", "said"), [
    # prod's storage.result_ttl_days is 30: its jobs keep their rows while R2 holds their images
    ({"keep_days": 29, "cron": "30 3 * * *"}, ("goldgate:spec.database.retention.keep_days: 29 is below "
                                              "storage.result_ttl_days (30)")),
    ({"keep_days": 30, "metrics_keep_days": 7, "cron": "30 3 * * *"},
     "retention.metrics_keep_days: 7 is below keep_days (30)"),
    ({"cron": "30 3 * * *"}, "retention.keep_days: is required"),
    ({"keep_days": 30}, "retention.cron: is required"),
    ({"keep_days": "30", "cron": "30 3 * * *"}, "retention.keep_days: expected an integer"),
    ({"keep_days": 30, "cron": "0 30 3 * * *"}, "has 6 field(s), not 5"),
    ({"keep_days": 30, "cron": "@daily"}, "has 1 field(s), not 5"),
    ({"keep_days": 30, "cron": "0 24 * * *"}, "the hour field '24' names 24, outside 0-23"),
    ({"keep_days": 30, "cron": "60 3 * * *"}, "the minute field '60' names 60, outside 0-59"),
    ({"keep_days": 30, "cron": "0 3 ? * *"},
     "the day of month field '?' holds a character or name Cloudflare does not accept there"),
    ({"keep_days": 30, "cron": "30 3 * * *", "keep": 1}, "retention: unknown field(s) keep"),
    ("daily", "retention: expected a mapping"),
])
def test_a_retention_block_that_would_delete_what_must_be_kept_or_never_run_is_refused_naming_the_field(
        retention, said):
    assert said in refusal(retention, "prod")


def test_retention_on_a_local_stack_is_read_for_its_stack_host_to_run(tmp_path):
    # The same stack file runs locally: the stack host prunes on the cron (tests/local/test_review16_ret_*.py).
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["database"]["retention"] = {"keep_days": 30, "cron": "30 3 * * *"}
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert specs.load_local("staging", path).database.retention == specs.RetentionSpec(keep_days=30, cron="30 3 * * *")


@pytest.mark.parametrize(("cron", "said"), [
    # Cloudflare's weekdays are 1-7 from Sunday (Quartz): crontab's 0 for Sunday is refused there
    ("30 3 * * 0", "the day of week field '0' names 0, outside 1-7; Cloudflare's weekdays are 1-7 with 1 for Sunday"),
    ("30 3 * * 0-4", "the day of week field '0-4' names 0, outside 1-7"),
    ("L 3 * * *", "the minute field 'L' holds a character or name Cloudflare does not accept there"),
    ("30 3 * MON *", "the month field 'MON' holds a character or name Cloudflare does not accept there"),
    ("30 3 * * JAN", "the day of week field 'JAN' holds a character or name"),
    ("30 3 * * FOO", "the day of week field 'FOO' holds a character or name"),
    ("*/0 3 * * *", "the minute field '*/0' has a step that is not a positive number"),
    ("30 3/ * * *", "the hour field '3/' has a step that is not a positive number"),
])
def test_a_cron_cloudflare_refuses_or_reads_otherwise_is_refused_before_pulumi_up(cron, said):
    assert said in refusal({"keep_days": 30, "cron": cron}, "prod")


@pytest.mark.parametrize("cron", ["0 17 * * 1", "0 17 * * sun", "10 7 * * mon-fri", "10 7 * * 2-6", "0 18 * * 6L",
                                  "0 18 * * friL", "59 23 LW * *", "0 10 * * MON#2", "0 9 L * *", "0 3 1 jan,Jul *",
                                  "*/10 9-17 * * *", "0 0 15W * 7"])
def test_the_cron_forms_cloudflare_documents_are_accepted(cron):
    spec = specs.from_pulumi_config("prod", cloud_doc("prod", {"keep_days": 30, "cron": cron}))
    assert spec.database.retention.cron == cron
