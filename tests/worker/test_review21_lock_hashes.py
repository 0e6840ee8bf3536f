"""The worker image's requirements.txt is hash-locked, and the Dockerfile installs it in pip's hash-checking
mode: a rebuild installs only the files whose sha256 the file lists, so a re-uploaded or tampered wheel for a
pinned version fails the build instead of landing in the image. Offline: the index itself is not asked here
(scripts/lock_worker_requirements.py --check does that)."""

from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement
from pip._internal.network.session import PipSession
from pip._internal.req.req_file import parse_requirements
from worker_harness import REPO, WORKER_DIR

REQUIREMENTS = WORKER_DIR / "requirements.txt"
CI_LOCK = REPO / "requirements-ci.txt"
# A pin ends in ` \` when hash lines follow it; one without is read too, to be named as unhashed.
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)(?: \\)?")
HASH = re.compile(r"\s+--hash=(sha256:[0-9a-f]{64})( \\)?")
REGENERATE = "regenerate them: scripts/lock_worker_requirements.py (its docstring says how)"


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def _locked(path) -> dict[str, tuple[str, set[str]]]:
    """{name: (version, its hashes)}: each pin as `name==version \\`, then one `--hash=` line per file."""
    locked: dict[str, tuple[str, set[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        if match := PIN.fullmatch(line):
            current = _name(match[1])
            assert current not in locked, f"{path.name} pins {match[1]} twice"
            locked[current] = (match[2], set())
        elif match := HASH.fullmatch(line):
            assert current is not None, f"{path.name}: {line!r} comes before any pin"
            locked[current][1].add(match[1])
        else:
            assert not line.strip() or line.lstrip().startswith("#"), (
                f"{path.name}: {line!r} is neither a pin followed by its hashes (`name==version \\`) nor a "
                f"--hash line; {REGENERATE}")
    return locked


def test_every_pin_of_the_worker_requirements_carries_its_sha256_hashes():
    locked = _locked(REQUIREMENTS)
    assert {"runpod", "boto3", "pyyaml", "aiohttp"} <= set(locked)
    unhashed = sorted(name for name, (_, hashes) in locked.items() if not hashes)
    assert not unhashed, f"requirements.txt pins these without a hash: {', '.join(unhashed)}; {REGENERATE}"


# pip's reader loads its vendored pkg_resources, which warns it is deprecated: pip's business, not ours.
@pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")
def test_pip_reads_an_exact_pin_and_its_hashes_from_every_requirement():
    # pip's own reader, as the Docker build's pip reads the file: a hash line cut off from its pin (a missing
    # ` \`) or a pin that is not `==` would only show up as a failed build otherwise.
    parsed = list(parse_requirements(str(REQUIREMENTS), session=PipSession()))
    seen = {}
    for entry in parsed:
        requirement = Requirement(entry.requirement)
        [spec] = requirement.specifier
        assert spec.operator == "==" and "*" not in spec.version, f"{entry.requirement} is not an exact pin"
        hashes = (entry.options or {}).get("hashes", {})
        assert set(hashes) == {"sha256"} and hashes["sha256"], f"pip reads no sha256 for {entry.requirement}"
        seen[_name(requirement.name)] = (spec.version, {f"sha256:{h}" for h in hashes["sha256"]})
    assert seen == _locked(REQUIREMENTS)


def test_the_dockerfile_installs_the_worker_requirements_in_hash_checking_mode():
    installs = [line for line in (WORKER_DIR / "Dockerfile").read_text().splitlines()
                if line.startswith("RUN ") and "pip install" in line]
    assert len(installs) == 1, installs
    [install] = installs
    assert "-r /opt/goldgate/requirements.txt" in install
    # Stated, not left to the hash lines: a requirements.txt that lost them would otherwise install unchecked.
    assert "--require-hashes" in install.split(), install
    assert "--no-cache-dir" in install.split(), install


def test_the_image_trusts_every_file_ci_trusts_for_the_same_version():
    # The nearest offline record of what the index holds: requirements-ci.txt, locked by pip-compile against
    # the same index and installed in CI under --require-hashes. A file it lists for a version the image pins
    # too, and the image's lock does not, is one the image's pip refuses: a lock made from one platform's
    # wheel (the base image's Python is the deployer's choice), or hashes left over from another version.
    worker, ci = _locked(REQUIREMENTS), _locked(CI_LOCK)
    shared = [name for name, (version, _) in worker.items() if ci.get(name, ("",))[0] == version]
    assert "runpod" in shared and len(shared) * 2 > len(worker), shared
    missing = {name: sorted(ci[name][1] - worker[name][1]) for name in shared}
    missing = {name: hashes for name, hashes in missing.items() if hashes}
    assert not missing, (f"requirements.txt lacks hashes requirements-ci.txt lists for the same versions: "
                         f"{missing}; {REGENERATE}")
