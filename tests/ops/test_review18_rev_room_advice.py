"""What the checklist's `database_room` line tells an operator to run works on the stack it judges.

The line named `goldgate prune <stack> --keep-days 30` whatever the stack: `goldgate prune` refuses fewer days
than storage.result_ttl_days, so on a stack keeping results longer than a month the one command the line gave
was refused. On the cloud it also said "lower keep_days" of a retention that already keeps the fewest days the
stack file's loader allows (keep_days may not be below result_ttl_days)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path

import yaml
from ops_fixtures import build_stack_db

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.commands import ops
from goldgate.local.platform import LocalPlatform
from goldgate.ops import checklist, checklist_facts, retention
from goldgate.ops.checklist_facts import DatabaseRoom, Facts
from goldgate.spec import RetentionSpec

GIB, MIB = 1024 ** 3, 1024 ** 2
Usage = namedtuple("Usage", "total used free")
TTL_DAYS = 60  # results kept two months: longer than the month the line suggested


def _stacks_keeping_results(tmp_path: Path, days: int) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["storage"]["result_ttl_days"] = days
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_prune_a_full_local_disk_is_told_to_run_is_one_prune_accepts(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    platform = LocalPlatform(home, _stacks_keeping_results(tmp_path, TTL_DAYS))
    db = platform.db_path("staging")
    build_stack_db(db, jobs=5)
    monkeypatch.setattr(ops, "_platform", lambda _args: platform)  # the CLI reads this test's stacks file
    real = checklist_facts.shutil.disk_usage
    monkeypatch.setattr(checklist_facts.shutil, "disk_usage", lambda path: (
        Usage(50 * GIB, 50 * GIB - 500 * MIB, 500 * MIB) if Path(path) == db.parent else real(path)))

    main(["checklist", "staging", "--home", str(home), "--offline", "--json"])
    line = next(c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] == "database_room")
    assert line["status"] == checklist.WARN, line
    command = re.search(r"`(goldgate prune staging [^`]*)`", line["evidence"])
    assert command, line["evidence"]

    code = main([*command.group(1).split()[1:], "--home", str(home)])
    _, err = capsys.readouterr()
    assert code == 0, err  # as it was: "--keep-days 30 is below staging's R2 result ttl (60 days ..."
    assert f"--keep-days {TTL_DAYS}" in command.group(1)


def _cloud_line(spec: specs.StackSpec) -> str:
    room = DatabaseRoom("D1 goldgate-prod (u)", 8_500_000_000, cap_bytes=10_000_000_000, database_id="u")
    facts = Facts(stack="prod", now=datetime.now(UTC), target="cloud", specs={"prod": spec}, room=room)
    status, evidence = checklist.database_room(facts)
    assert status == checklist.WARN, evidence
    return evidence


def _prod(ttl_days: int, retention_spec: RetentionSpec | None) -> specs.StackSpec:
    prod = specs.load_pulumi("prod")
    return dataclasses.replace(
        prod, storage=dataclasses.replace(prod.storage, result_ttl_days=ttl_days),
        database=dataclasses.replace(prod.database, retention=retention_spec))


def test_the_cloud_prune_keeps_at_least_the_stacks_result_ttl():
    spec = _prod(TTL_DAYS, None)
    evidence = _cloud_line(spec)
    days = int(re.search(r"`goldgate prune prod --keep-days (\d+) --target cloud", evidence).group(1))
    retention.check_keep_days(spec, days, None)  # what `goldgate prune` refuses first; it raised for 30
    assert "set database.retention in stacks/Pulumi.prod.yaml" in evidence


def test_a_retention_at_the_fewest_days_allowed_is_not_told_to_keep_fewer():
    at_ttl = _cloud_line(_prod(30, RetentionSpec(keep_days=30, cron="30 3 * * *")))
    assert "lower keep_days" not in at_ttl, at_ttl
    assert ("database.retention keeps 30 days: set metrics_keep_days or lower storage.result_ttl_days and "
            "keep_days together, and `pulumi up --stack prod`") in at_ttl

    above = _cloud_line(_prod(30, RetentionSpec(keep_days=90, cron="30 3 * * *", metrics_keep_days=90)))
    assert ("database.retention keeps 90 days: lower keep_days (to no fewer than storage.result_ttl_days, 30), "
            "and `pulumi up --stack prod`") in above
