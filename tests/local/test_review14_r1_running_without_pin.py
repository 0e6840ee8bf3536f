"""A STAGING stack that runs with no pin.json (moved aside, as the advice for an empty one says). `goldgate up` of it
built the working tree's image and pinned it, silently, under the running host: the stack served one image and was
pinned to another, which its next start would run. Now `up` of a running stack pins nothing, and `status` says the
stack has no pin, what its next start would run, and the command that pins the image it serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stackfiles import worker_variant

from goldgate.commands.local import ensure_up
from goldgate.local.platform import REPO, LocalPlatform
from goldgate.local.state import StackDir

STACK = "staging"


def test_up_of_a_running_stack_with_no_pin_pins_nothing_and_status_says_so(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    ensure_up(platform, STACK)
    variant = worker_variant(home, tmp_path)
    d = StackDir(home, STACK)
    try:
        assert platform.deploy(STACK, variant).image == variant
        d.pin_file.rename(d.root / "pin.json.aside")

        done = subprocess.run([sys.executable, "-m", "goldgate.cli", "up", STACK, "--home", str(home)], check=False,
                              capture_output=True, text=True, timeout=180, cwd=REPO)
        assert done.returncode == 0, done.stderr
        assert "building the worker image" not in done.stderr, done.stderr
        assert d.pinned_image() is None  # not the working tree's image, under a host that serves another

        status = platform.status(STACK)
        assert status.running and status.image == variant, status
        said = status.pin_not_served or ""
        assert said.startswith(f"no pin ({d.pin_file} is missing), but its host serves {variant}: its next start "
                               "(`goldgate down` and `up`, or a host that dies) runs the working tree's image"), said
        assert f"`goldgate deploy {STACK} --image {variant}` pins the image it serves" in said, said
    finally:
        platform.down(STACK)
