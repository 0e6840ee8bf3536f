"""A deploy whose new service could not start on a full disk, where the host could not put the pin back either: once
there is space again the host records why (`redeploy_failed`, with `pin_not_reverted`). `goldgate status` still told
another story: "a deploy, promote or rollback moved the pin and ended before the host took it (killed, or its host
was hung)", and offered first the deploy of the very image whose service had failed to start. It now says what the
host recorded: it could not start the pinned image, and why, and that the pin could not go back, and the command
that puts the pin back on the image it serves.

A full disk is simulated as RLIMIT_FSIZE 0 on the running host alone (EFBIG where a full disk says ENOSPC), as
tests/local/test_review14_c2_deploy_disk_full.py does."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from processes import wait_until
from stackfiles import worker_variant

from goldgate.commands.local import ensure_up
from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform

STACK = "staging"


def test_status_says_the_host_could_not_start_the_pin_nor_put_it_back(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    first = ensure_up(platform, STACK).image
    second = worker_variant(home, tmp_path)
    host = platform.require_running(STACK)["pid"]
    try:
        limits = resource.prlimit(host, resource.RLIMIT_FSIZE)
        resource.prlimit(host, resource.RLIMIT_FSIZE, (0, limits[1]))  # the disk fills up under the running host
        with pytest.raises(StateError):
            platform.deploy(STACK, second, timeout_s=10)
        resource.prlimit(host, resource.RLIMIT_FSIZE, limits)  # space again: the host records what happened
        assert wait_until(lambda: "redeploy_failed" in platform.require_running(STACK), 30)

        said = platform.status(STACK).pin_not_served or ""
        assert said.startswith(f"pinned to {second}, but its host serves {first}: its host could not start its "
                               f"service on {second} (File too large writing "), said
        assert "the pin could not go back (File too large writing " in said, said
        assert "ended before the host took it" not in said, said
        assert f"`goldgate deploy {STACK} --image {first}` puts the pin back on the image it serves" in said, said
    finally:
        platform.down(STACK)
