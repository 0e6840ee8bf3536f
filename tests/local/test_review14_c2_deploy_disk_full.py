"""A deploy to a local stack on a disk that fills up. The host could not write the new service's config; its
fallback then could not write the pin back, nor `run()`'s except its "failed" state: the host stopped, its shutdown
removed the old "ready" state.json, and the stack that was serving went down, with `goldgate status` saying only
"down". Now the host serves its old image on, and `status` says what it serves; a deploy run on a full disk refuses
before it moves anything, in one line naming where it could not write.

A full disk is simulated as RLIMIT_FSIZE 0 (no file may grow: EFBIG where a full disk says ENOSPC), set on the
running host alone, or on the `goldgate deploy` process alone (as tests/local/test_operator_chaos.py does for `up`)."""

from __future__ import annotations

import contextlib
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from processes import kill_everything_naming, wait_until

from goldgate.commands.local import WORKER_SOURCE, ensure_up
from goldgate.errors import StateError
from goldgate.local import image_store
from goldgate.local.platform import REPO, LocalPlatform, _alive
from goldgate.local.state import StackDir

STACK = "staging"


def _variant(home: Path, tmp: Path, change: str) -> str:
    source = tmp / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    # A change to a file docker is sent makes a new image (a notes file would not).
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write(f"\n# {change}\n")
    return image_store.build_local_image(source, home)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One stack for the module (its start and stop were most of each test's CPU): each test deploys an image of
    its own onto what the stack serves, and leaves the stack serving (the first test puts the host's disk back)."""
    home = tmp_path_factory.mktemp("c2-disk-full") / "home"
    home.mkdir()
    try:
        yield home
    finally:
        try:
            LocalPlatform(home).down(STACK)
        finally:
            kill_everything_naming(str(home))


def _serves(platform: LocalPlatform) -> int:
    """The status code of an authenticated API call to the running stack."""
    state = platform.require_running(STACK)
    answer = httpx.get(f"{state['api_url']}/api/workflows", timeout=10,
                       headers={"Authorization": f"Bearer {platform.api_token(STACK)}"})
    return answer.status_code


def _disk_full() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_a_host_that_cannot_write_a_deploys_files_serves_its_old_image_on(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    first = ensure_up(platform, STACK).image
    second = _variant(home, tmp_path, "a change to the worker tree makes a new image")
    host = platform.require_running(STACK)["pid"]
    limits = resource.prlimit(host, resource.RLIMIT_FSIZE)
    try:
        resource.prlimit(host, resource.RLIMIT_FSIZE, (0, limits[1]))  # the disk fills up under the running host
        with pytest.raises(StateError) as refused:
            platform.deploy(STACK, second, timeout_s=10)
        assert f"did not pick up {second} within 10 s; it still serves {first}" in str(refused.value), refused.value
        # The stack that was serving still serves, its old image, and says so.
        assert _alive(host) and platform.require_running(STACK)["pid"] == host
        assert _serves(platform) == 200
        status = platform.status(STACK)
        assert status.running and status.image == first, status
        assert f"pinned to {second}, but its host serves {first}" in (status.pin_not_served or ""), status

        # Space again: the host records the failed deploy it could not (in a few seconds), and a deploy goes through.
        resource.prlimit(host, resource.RLIMIT_FSIZE, limits)
        assert wait_until(lambda: "redeploy_failed" in (platform.require_running(STACK)), 30)
        failed = platform.require_running(STACK)["redeploy_failed"]
        assert failed["image"] == second and failed["error"].startswith("File too large writing "), failed
        assert failed["pin_not_reverted"].startswith(f"File too large writing {StackDir(home, STACK).pin_file}")
        assert platform.deploy(STACK, second).image == second
        assert _serves(platform) == 200
    finally:
        with contextlib.suppress(ProcessLookupError):  # the module's stack serves on, with its disk back
            resource.prlimit(host, resource.RLIMIT_FSIZE, limits)


def test_a_deploy_on_a_full_disk_refuses_in_one_line_before_it_moves_anything(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    first = ensure_up(platform, STACK).image
    second = _variant(home, tmp_path, "another change to the worker tree makes another image")
    d = StackDir(home, STACK)
    done = subprocess.run([sys.executable, "-m", "goldgate.cli", "deploy", STACK, "--image", second, "--home",
                           str(home), "--target", "local"], check=False, capture_output=True, text=True,
                          timeout=120, preexec_fn=_disk_full, cwd=REPO)
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0] == (f"goldgate: error: cannot deploy {second} to {STACK}: File too large writing to {d.root}; "
                        f"nothing was pinned and {STACK} still serves {first}. Free some space, then run the "
                        "deploy again"), lines[0]
    assert d.pinned_image() == first
    status = platform.status(STACK)
    assert status.image == first and status.pin_not_served is None
    assert _serves(platform) == 200
