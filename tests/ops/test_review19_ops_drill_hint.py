"""The checklist's DR drill line names the drill of the target it judges: on the cloud, the drill of the stack's
D1 (`--target cloud --database-id`), which the CLI takes as printed; a plain `goldgate dr-drill <stack>` drills the local
stack's SQLite and records no cloud evidence."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from goldgate.cli import build_parser
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts


@pytest.mark.parametrize(("target", "cloud"), [("cloud", True), ("local", False)])
def test_no_drill_recorded_names_the_drill_of_the_target(target: str, cloud: bool) -> None:
    status, evidence = checklist.dr_drill(Facts(stack="prod", now=datetime.now(UTC), target=target))
    assert status == checklist.FAIL
    command = re.search(r"`(goldgate dr-drill [^`]+)`", evidence)
    assert command, evidence
    argv = command.group(1).replace("<uuid>", str(uuid.uuid4())).split()[1:]
    args = build_parser().parse_args(argv)
    on_cloud = args.cloud or args.target == "cloud"
    assert (args.stack, on_cloud, args.database_id is not None) == ("prod", cloud, cloud), evidence
