"""`goldgate status` of a running stack names the workflow version its service and workers run: its host read the
stacks file when it started, so a later edit of `workflow_version` is not what the stack runs until a restart."""

from __future__ import annotations

from pathlib import Path

import yaml
from stackfiles import stacks_file

from goldgate.commands import local
from goldgate.local.platform import LocalPlatform


def _set_version(path: Path, stack: str, version: str) -> str:
    doc = yaml.safe_load(path.read_text())
    before = doc["stacks"][stack]["workflow_version"]
    doc["stacks"][stack]["workflow_version"] = version
    path.write_text(yaml.safe_dump(doc))
    return str(before)


def test_status_of_a_running_stack_shows_the_version_it_runs_not_the_edited_one(home: Path) -> None:
    path = stacks_file(home)
    platform = LocalPlatform(home, path)
    platform.up("staging")
    try:
        running = _set_version(path, "staging", "2099.1.1-edited")
        status = platform.status("staging")
        assert status.workflow_version == running
        assert status.spec_changed   # and the `settings` line says a restart applies the edit
        shown = local._render_status(status.to_dict())
        assert "2099.1.1-edited" not in shown, shown
        assert f"workflow_version       {running}" in shown, shown
        assert "its stacks file section changed since it started" in shown, shown
    finally:
        platform.down("staging")
    # Down, the stack runs nothing: the version shown is the one its next start runs.
    assert platform.status("staging").workflow_version == "2099.1.1-edited"
