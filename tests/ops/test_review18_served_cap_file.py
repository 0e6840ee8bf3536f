"""`goldgate stuck` reads the cap a running local stack's service enforces from the config its host wrote
(`stacks/<stack>/service.json`). It read that file with a plain read: a named pipe put in its place blocked the
command for ever (no writer comes), and a huge file was read whole into memory. It is now read as every state
file is (goldgate.local.state.read_small_text); anything but a small JSON object gives no cap, and `stuck` falls
back to the stacks file's."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from ci_policy import needs

from goldgate.commands.ops import _served_cap
from goldgate.local.state import MAX_STATE_BYTES, StackDir


def _running(home: Path) -> SimpleNamespace:
    """A platform whose stack has a live host (the cap is read only then)."""
    return SimpleNamespace(home=home, running_host=lambda stack: os.getpid())


def _cap_within(platform: SimpleNamespace, seconds: float = 20) -> object:
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(_served_cap(platform, "staging")), daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        pytest.fail("reading the served cap hung")
    return got[0]


@needs(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")
def test_a_fifo_in_place_of_the_service_config_gives_no_cap_and_no_hang(tmp_path: Path) -> None:
    d = StackDir(tmp_path, "staging")
    d.root.mkdir(parents=True)
    os.mkfifo(d.root / "service.json")
    assert _cap_within(_running(tmp_path)) is None


@pytest.mark.parametrize(("content", "cap"), [
    (b'{"max_jobs_in_flight": 7}', 7),
    (b'{"max_jobs_in_flight": true}', None),
    (b"[7]", None),
    (b"\xff\xfe not utf-8", None),
    (b" " * (MAX_STATE_BYTES + 1), None),  # not read into memory
])
def test_the_service_config_is_read_as_a_small_state_file(tmp_path: Path, content: bytes, cap: object) -> None:
    d = StackDir(tmp_path, "staging")
    d.root.mkdir(parents=True)
    (d.root / "service.json").write_bytes(content)
    assert _cap_within(_running(tmp_path)) == cap
