"""A deploy (and a promote's or rollback's) moves the stack's pin, then signals its host to take it. One killed in
between left a pin the running stack does not serve: `goldgate status` still showed the pin as the stack's image, and
`goldgate up` said "already up", while the stack served the old image and its next start would run the new one (on
PROD, an image no smoke run had verified there). Now status shows what the host serves and says the pin is not
served and what to run; `up` says it too, and an `up` that starts the stack on such a pin says so."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import kill_everything_naming

from goldgate.commands.local import WORKER_SOURCE, _render_status, ensure_up
from goldgate.local import image_store
from goldgate.local.platform import REPO, LocalPlatform
from goldgate.local.state import StackDir

# A `goldgate deploy` in a process of its own, killed (SIGKILL) at the instant it would signal the host: after it
# moved the pin, before the host was told.
_KILLED_DEPLOY = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from goldgate.local.platform import LocalPlatform
    real_kill = os.kill
    def kill(pid, sig):
        if sig == signal.SIGHUP:
            real_kill(os.getpid(), signal.SIGKILL)
        real_kill(pid, sig)
    os.kill = kill
    LocalPlatform(Path(sys.argv[1])).deploy("staging", sys.argv[2])
""")


def _variant(home: Path, tmp: Path, change: str) -> str:
    source = tmp / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    # A change to a file docker is sent makes a new image (a notes file would not).
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write(f"\n# {change}\n")
    return image_store.build_local_image(source, home)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One stack for the module (its start and stop were most of each test's CPU): each test kills a deploy of an
    image of its own to what the stack serves, and leaves the stack up (on its pin)."""
    home = tmp_path_factory.mktemp("c1-pin-not-served") / "home"
    home.mkdir()
    try:
        yield home
    finally:
        try:
            LocalPlatform(home).down("staging")
        finally:
            kill_everything_naming(str(home))


def _killed_deploy(home: Path, image: str) -> None:
    done = subprocess.run([sys.executable, "-c", _KILLED_DEPLOY, str(home), image], cwd=REPO, timeout=120,
                          capture_output=True, text=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_status_and_up_after_a_deploy_killed_between_pin_and_signal(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    first = ensure_up(platform, "staging").image
    second = _variant(home, tmp_path, "a change to the worker tree makes a new image")
    _killed_deploy(home, second)
    assert StackDir(home, "staging").pinned_image() == second  # the pin moved ...
    assert platform.require_running("staging")["image"] == first  # ... and the host still serves the old image

    status = platform.status("staging")
    assert status.image == first, "status named the pin as the image the stack runs"
    note = status.pin_not_served or ""
    assert f"pinned to {second}, but its host serves {first}" in note, note
    assert f"`goldgate deploy staging --image {second}` applies the pin" in note, note
    assert "\n" not in note
    shown = _render_status(status.to_dict())
    assert f"image                  {first}" in shown and f"pin                    {note}" in shown, shown

    said: list[str] = []
    assert platform.up("staging", progress=said.append).image == first
    assert f"staging: {note}" in said, said

    # The advised command settles it.
    after = platform.deploy("staging", second)
    assert after.image == second and after.pin_not_served is None


def test_up_says_it_starts_on_a_pin_the_last_host_never_served(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    first = ensure_up(platform, "staging").image
    second = _variant(home, tmp_path, "another change to the worker tree makes another image")
    _killed_deploy(home, second)
    os.kill(platform.require_running("staging")["pid"], signal.SIGKILL)  # then the machine loses the host
    said: list[str] = []
    status = platform.up("staging", progress=said.append)
    assert status.image == second and status.pin_not_served is None
    assert any(line.startswith(f"staging: starting on its pin {second}, which its last host never served (it "
                               f"served {first})") for line in said), said
