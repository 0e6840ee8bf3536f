"""`goldgate status` and `goldgate down` after stacks/local.yaml was edited under running stacks. A stack's section
removed (or renamed) while it ran was passed over in silence: `down all` said "down: prod" and exited 0 while the
stack went on serving, and `status` did not list it. A section edited into an invalid one made `status` fail whole,
showing no stack at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.commands import local
from goldgate.local.platform import LocalPlatform


def write_stacks(path: Path, drop: str | None = None, staging_endpoint: dict | None = None) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    if drop:
        del doc["stacks"][drop]
    doc["stacks"].get("staging", {}).get("endpoint", {}).update(staging_endpoint or {})
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPlatform]:
    """A state home whose commands read a stacks file of the test's own."""
    platform = LocalPlatform(tmp_path / "home", write_stacks(tmp_path / "local.yaml"))
    monkeypatch.setattr(local, "_platform", lambda _args: platform)
    yield platform


def test_a_running_stack_whose_section_was_removed_is_named_not_passed_over(capsys, platform: LocalPlatform) -> None:
    home = str(platform.home)
    try:
        local.ensure_up(platform, "staging")
        host = platform.require_running("staging")["pid"]
        write_stacks(platform.stacks_file, drop="staging")
        capsys.readouterr()

        assert main(["status", "--home", home]) == 1
        said = (f"its host (pid {host}) still runs, but {platform.stacks_file} no longer has a section for it: "
                "`goldgate down staging` stops it")
        assert f"staging: up: {said}" in capsys.readouterr().out.splitlines()

        assert main(["down", "all", "--home", home]) == 0
        assert capsys.readouterr().out.splitlines() == ["down: prod, staging"]
        assert platform.running_host("staging") is None  # what it said is so: the host is gone
    finally:
        write_stacks(platform.stacks_file)
        platform.down("staging")


def test_a_stack_that_is_down_and_off_the_file_is_not_reported(capsys, platform: LocalPlatform) -> None:
    (platform.home / "stacks" / "qa").mkdir(parents=True)  # a stack removed after its `down`
    assert main(["down", "all", "--home", str(platform.home)]) == 0
    assert capsys.readouterr().out.splitlines() == ["down: prod, staging"]


def test_status_shows_every_stack_when_one_section_no_longer_validates(capsys, platform: LocalPlatform) -> None:
    write_stacks(platform.stacks_file, staging_endpoint={"workers_max": 0})
    assert main(["status", "--home", str(platform.home)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prod: down"
    assert (f"staging: unknown: {platform.stacks_file}: stacks.staging.endpoint.workers_max: 0 is below the minimum "
            "1") in lines
