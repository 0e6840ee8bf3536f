"""`goldgate up all` brings up every stack of stacks/local.yaml, as `down all` stops them: a stack that cannot start
is named with its reason and the exit is 1, and the others are brought up all the same. A stack cannot be named
`all` (it could be neither brought up nor stopped alone)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml
from stackfiles import stacks_file

from goldgate import spec as specs
from goldgate.commands import local as local_commands
from goldgate.errors import SpecError
from goldgate.local.platform import LocalPlatform


def _up_all(platform: LocalPlatform, home: Path, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(local_commands, "_platform", lambda _args: platform)
    code = local_commands.cmd_up(argparse.Namespace(stack="all", home=str(home), json=False))
    return code, capsys.readouterr().out


def test_up_all_brings_up_every_stack_and_names_the_one_that_cannot_start(
        home: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    path = stacks_file(tmp_path)
    good = path.read_text()
    doc = yaml.safe_load(good)
    doc["stacks"]["prod"]["endpoint"]["workers_max"] = "many"   # an edit gone wrong in one section
    path.write_text(yaml.safe_dump(doc))
    platform = LocalPlatform(home, path)
    try:
        code, out = _up_all(platform, home, monkeypatch, capsys)
        assert code == 1
        assert "staging: up" in out
        prod_line = next(line for line in out.splitlines() if line.startswith("prod:"))
        assert prod_line.startswith("prod: not up: ") and "workers_max" in prod_line
        assert platform.status("staging").running is True
        assert platform.running_host("prod") is None

        path.write_text(good)   # fixed: `up all` again brings prod up and leaves staging as it runs
        staging_pid = platform.require_running("staging")["pid"]
        code, out = _up_all(platform, home, monkeypatch, capsys)
        assert code == 0, out
        assert "prod: up" in out and "staging: up" in out
        assert platform.require_running("staging")["pid"] == staging_pid
        assert platform.status("prod").running is True
    finally:
        path.write_text(good)
        for stack in ("staging", "prod"):
            platform.down(stack)


def test_a_stack_named_all_is_refused(tmp_path: Path) -> None:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["all"] = doc["stacks"].pop("staging")
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="cannot be named 'all'"):
        specs.load_local("all", path)
