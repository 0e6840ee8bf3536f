"""LocalDeployer.served_pin: the pin STAGING's running host serves, with when it was written (pin.json's
`pinned_at`, which starts the gate's error-rate window when no recorded deploy put the pin there). None when the
stack is down or its host serves another image; a `pinned_at` that is no UTC time is no time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from goldgate.local.state import StackDir, write_json_atomic
from goldgate.release.deployers.local import LocalDeployer

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


class _Platform:
    def __init__(self, home: Path, running: bool, serves: str | None) -> None:
        self.home, self._running, self._serves = home, running, serves

    def pinned_image(self, stack: str) -> str | None:
        pin = StackDir(self.home, stack).read_pin()
        return pin.get("image") if isinstance(pin, dict) else None

    def status(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(running=self._running, image=self._serves)


def test_the_served_pin_says_when_it_was_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    d = StackDir(home, "staging")
    d.pin(A, reason="test")
    write_json_atomic(d.pin_file, {"image": A, "reason": "test", "pinned_at": "2026-12-01T10:00:05.000Z"})
    served = LocalDeployer(home, _Platform(home, True, A)).served_pin("staging")
    assert served is not None and served.image == A
    assert served.pinned_at == datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC)
    assert LocalDeployer(home, _Platform(home, True, B)).served_pin("staging") is None    # a deploy under way
    assert LocalDeployer(home, _Platform(home, False, None)).served_pin("staging") is None  # down
    write_json_atomic(d.pin_file, {"image": A, "reason": "test", "pinned_at": "2026-12-01T10:00:05"})
    assert LocalDeployer(home, _Platform(home, True, A)).served_pin("staging").pinned_at is None   # no zone: no time
