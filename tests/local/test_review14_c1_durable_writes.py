"""The stack's records (pin.json, state.json) and the secrets `up` makes were renamed into place (or, for a secret,
written in place) without ever being fsynced. A machine that loses power soon after can come back with the rename
done and the file empty: `up` then refused PROD's empty pin.json as corrupt and advised removing it, which left PROD
with no image; an emptied api_token was made anew in silence, locking out every client holding the one handed out.
Short of cutting the power, what shows it is the order of the calls: the data reaches the disk before the rename,
and the rename before the command goes on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from goldgate.local.state import SECRET_NAMES, StackDir


def _record(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every fsync (by the path its fd names) and rename, in order."""
    events: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _durably_replaced(events: list[tuple[str, ...]], target: Path) -> None:
    renames = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(target)]
    assert renames, f"{target.name} was not renamed into place (a crash mid-write leaves it cut short): {events}"
    at = renames[-1]
    tmp = events[at][1]
    assert ("fsync", tmp) in events[:at], f"{target.name}'s data was not on disk before its rename: {events}"
    assert ("fsync", str(target.parent)) in events[at + 1:], f"the rename of {target.name} was not made durable"


def test_the_pin_is_on_disk_before_it_replaces_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = StackDir(tmp_path, "prod")
    d.root.mkdir(parents=True)
    events = _record(monkeypatch)
    d.pin("local/worker@sha256:" + "a" * 64, reason="promote")
    _durably_replaced(events, d.pin_file)
    assert d.pinned_image() == "local/worker@sha256:" + "a" * 64


def test_a_new_secret_is_whole_and_on_disk_before_up_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = StackDir(tmp_path, "staging")
    d.secrets_dir.mkdir(parents=True)
    d.secret_file("api_token").write_text("")  # what a power cut left of the last one: made anew
    events = _record(monkeypatch)
    d.ensure()
    for name in SECRET_NAMES:
        _durably_replaced(events, d.secret_file(name))
        assert (d.secret_file(name).stat().st_mode & 0o777) == 0o600
    assert len(d.secret("api_token")) == 64
    assert not list(d.secrets_dir.glob(".*")), "a temp file was left behind"
