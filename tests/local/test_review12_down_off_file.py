"""`down` of a stack whose section of stacks/local.yaml was removed, renamed or edited into one that no longer
validates while the stack ran. `down` reads nothing from the section, yet it refused the name ("no stack named
prod"), so the stack went on serving and the operator had to put the section back to stop it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError
from goldgate.local.platform import LocalPlatform

STACK = "prod"


def _write_stacks(path: Path, drop: str | None = None, prod_endpoint: dict | None = None) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    if drop:
        del doc["stacks"][drop]
    doc["stacks"].get(STACK, {}).get("endpoint", {}).update(prod_endpoint or {})
    path.write_text(yaml.safe_dump(doc))
    return path


def _gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by this test process, `up`'s parent, counts as gone)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("edit", [{"drop": STACK}, {"prod_endpoint": {"workers_max": 0}}],
                         ids=["section-removed", "section-invalid"])
def test_down_stops_a_running_stack_whose_section_left_the_file(home: Path, tmp_path: Path, edit: dict) -> None:
    platform = LocalPlatform(home, _write_stacks(tmp_path / "local.yaml"))
    platform.up(STACK)
    host = platform.require_running(STACK)["pid"]
    _write_stacks(platform.stacks_file, **edit)
    try:
        platform.down(STACK)
    finally:
        _write_stacks(platform.stacks_file)
        if not _gone(host):
            platform.down(STACK)
            pytest.fail(f"`down {STACK}` left its host (pid {host}) running")
    assert platform.status(STACK).running is False
    assert not (home / "stacks" / STACK / "state.json").exists()


def test_down_still_refuses_a_name_this_home_never_ran_and_the_file_lacks(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home, _write_stacks(tmp_path / "local.yaml"))
    (home / "stacks").mkdir()
    (home / "Qa").mkdir()  # not a stack dir: outside stacks/, and no stack name
    for name in ("qa", "../Qa", "Qa"):
        with pytest.raises(SpecError, match="no stack named"):
            platform.down(name)
