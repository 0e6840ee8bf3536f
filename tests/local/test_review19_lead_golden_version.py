"""A golden run refuses a running stack whose stacks file declares another workflow version than it runs.

The report takes its workflow version from the stacks file, which a running stack read at its start: after an edit,
the report vouched for a version no case ran under (`2099.1.0` while STAGING ran `2026.11.0`), and the gate,
comparing it with the same edited file, let it through. The hold every golden run takes now refuses, naming the
restart that applies the edit, before any case runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from stackfiles import stacks_file
from test_review19_out_status_version import _set_version

from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform
from goldgate.release.deployers.local import LocalDeployer


def test_a_golden_run_on_a_stack_running_another_workflow_version_than_declared_runs_nothing(home: Path) -> None:
    path = stacks_file(home)
    platform = LocalPlatform(home, path)
    platform.up("staging")
    try:
        deployer = LocalDeployer(home, platform=platform)
        image = platform.pinned_image("staging")
        with deployer._golden_run("staging", image, "full"):
            pass                                   # as started: the file and the stack agree
        running = _set_version(path, "staging", "2099.1.0")
        refused = rf"declares workflow_version '2099.1.0' but the running stack serves '{running}'.*goldgate down"
        with pytest.raises(StateError, match=refused), deployer._golden_run("staging", image, "full"):
            pytest.fail("the run went on")
        _set_version(path, "staging", running)    # undone: the run may go on
        with deployer._golden_run("staging", image, "full"):
            pass
    finally:
        platform.down("staging")
