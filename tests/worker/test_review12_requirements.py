"""The worker image's requirements.txt pins every package pip installs for it, the runpod SDK's own dependencies
included: an unpinned one (aiohttp, pydantic, ...) takes whatever the index holds on the day of a rebuild, so two
builds of one commit can run different code. Read from the metadata of the packages installed in this venv, the
one the suite runs the real handler and SDK loop in."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from worker_harness import WORKER_DIR

REQUIREMENTS = WORKER_DIR / "requirements.txt"
# A pin ends in ` \` when its hash lines come under it (tests/worker/test_review21_lock_hashes.py).
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*)==([0-9][0-9A-Za-z.+!-]*)(?: \\)?")
HASH = re.compile(r"\s+--hash=sha256:[0-9a-f]{64}(?: \\)?")


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if HASH.fullmatch(line):
            continue
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.fullmatch(line)
        assert match, f"requirements.txt: {line!r} is not pinned as name==version"
        assert _name(match.group(1)) not in pins, f"requirements.txt lists {match.group(1)} twice"
        pins[_name(match.group(1))] = match.group(2)
    return pins


def _installed_at_pin(name: str, pins: dict[str, str]):
    """The installed distribution when its version is the pinned one: only then do its declared dependencies
    describe what the image installs."""
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        return None
    return dist if dist.version == pins.get(name) else None


def _unpinned_dependencies(pins: dict[str, str]) -> dict[str, str]:
    """Each dependency (extras followed) of a pinned package that requirements.txt does not pin -> who needs it."""
    unpinned: dict[str, str] = {}
    extras_seen: dict[str, set[str]] = {}
    todo = [(name, frozenset[str]()) for name in pins]
    while todo:
        name, extras = todo.pop()
        if name in extras_seen and extras <= extras_seen[name]:
            continue
        extras_seen.setdefault(name, set()).update(extras)
        dist = _installed_at_pin(name, pins)
        if dist is None:
            continue
        for raw in dist.requires or []:
            req = Requirement(raw)
            wanted = req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras))
            if not wanted:
                continue
            dep = _name(req.name)
            if dep not in pins:
                unpinned.setdefault(dep, f"{name}{sorted(extras) if extras else ''}: {raw}")
                continue
            todo.append((dep, frozenset(req.extras)))
    return unpinned


def test_every_line_of_the_worker_requirements_is_pinned_to_one_version():
    pins = _pins()
    assert {"runpod", "boto3", "pyyaml"} <= set(pins)


def test_the_runpod_sdk_the_suite_runs_is_the_one_the_image_pins():
    pins = _pins()
    assert _installed_at_pin("runpod", pins) is not None, (
        f"the venv runs runpod {distribution('runpod').version}, the image pins {pins['runpod']}")


def test_every_dependency_of_the_pinned_packages_is_pinned_too():
    unpinned = _unpinned_dependencies(_pins())
    assert not unpinned, ("requirements.txt leaves these dependencies unpinned (a rebuild installs whatever "
                          "version the index holds that day); pin each at the version this venv has: "
                          + "; ".join(f"{dep} (needed by {why})" for dep, why in sorted(unpinned.items())))
