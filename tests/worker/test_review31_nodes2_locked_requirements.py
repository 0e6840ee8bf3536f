"""A custom node's Python dependencies reach the image checked. Before, `custom_nodes.py install` pip-installed each
node's own requirements.txt with no pins or hashes: a compromised new upload of any dependency ran in the worker.
Now an entry may name a hash-locked file beside custom_nodes.yaml (`requirements: custom_nodes/<file>.txt`), installed
in pip's hash-checking mode from wheels only, the node's own file ignored; `requirements: none` says it has none; an
entry that says neither installs as before with a WARNING line. A lock pinning a package at another version than our
requirements.txt (which installs after the nodes) is refused by `goldgate build` and by the Dockerfile's check-pins
step, naming both pins. The install runs as the Dockerfile runs it, outside docker, on a node served from a local git
repository, pip kept off the index (PIP_NO_INDEX, wheels from PIP_FIND_LINKS) and off the venv (PIP_TARGET)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from ci_policy import needs
from custom_node_support import git, wheel

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "images" / "worker"
SCRIPT = WORKER / "custom_nodes.py"
HAVE_GIT = shutil.which("git") is not None
PACKAGE = "tinydep-nodes2"


def _git(repo: Path, *args: str) -> str:
    return git(repo, *args)


def _wheel(where: Path, version: str = "0.1") -> Path:
    return wheel(where, PACKAGE, version, f"VERSION = {version!r}\n".encode())


def _sdist(where: Path, version: str) -> Path:
    """A source distribution only: building it would need setuptools, which no lock pins."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"tinydep_nodes2-{version}.tar.gz"
    files = {"PKG-INFO": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n",
             "setup.py": f"from setuptools import setup\nsetup(name={PACKAGE!r}, version={version!r})\n"}
    with tarfile.open(path, "w:gz") as archive:
        for name, body in files.items():
            data = body.encode()
            member = tarfile.TarInfo(f"tinydep_nodes2-{version}/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lock(folder: Path, name: str, body: str) -> str:
    (folder / "custom_nodes").mkdir(parents=True, exist_ok=True)
    (folder / "custom_nodes" / f"{name}.txt").write_text(body)
    return f"custom_nodes/{name}.txt"


def _node(tmp_path: Path, requirements: str | None) -> tuple[Path, str]:
    """A custom node's repository at one commit, with that requirements.txt (None: none). (path, commit)"""
    repo = tmp_path / "tiny-node-src"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "__init__.py").write_text('NODE_CLASS_MAPPINGS = {"Tiny Invert": object}\n')
    if requirements is not None:
        (repo / "requirements.txt").write_text(requirements)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "A")
    return repo, _git(repo, "rev-parse", "HEAD").strip()


def _manifest(tmp_path: Path, *entries: dict) -> Path:
    path = tmp_path / "custom_nodes.yaml"
    path.write_text(yaml.safe_dump({"schema": 1, "custom_nodes": list(entries)}))
    return path


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The Dockerfile's step (`python -B custom_nodes.py ...`), pip kept off the index and the venv."""
    env = {**os.environ, "PIP_TARGET": str(tmp_path / "site"), "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": str(tmp_path / "wheels"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run([sys.executable, "-B", str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=env, check=False)


def _install(tmp_path: Path, manifest: Path) -> subprocess.CompletedProcess:
    return _run(tmp_path, "install", str(manifest), str(tmp_path / "custom_nodes"))


def _failed(done: subprocess.CompletedProcess) -> str:
    [line] = [x for x in done.stderr.splitlines() if "FAILED" in x]
    return line


# -- the install ----------------------------------------------------------------------------------------------------

@needs(HAVE_GIT, "git")
def test_a_locked_entry_installs_its_lock_hash_checked_and_ignores_the_nodes_own_requirements(tmp_path):
    wheel = _wheel(tmp_path / "wheels")
    # The node's own file names a package nowhere to be found: read, it would fail the build.
    repo, commit = _node(tmp_path, "no-such-package-nodes2\n")
    lock = _lock(tmp_path, "tiny-node", f"# pip-compile --generate-hashes\n{PACKAGE}==0.1 \\\n"
                                        f"    --hash=sha256:{_sha256(wheel)}\n    # via -r requirements.txt\n")
    done = _install(tmp_path, _manifest(tmp_path, {"url": f"file://{repo}", "commit": commit, "name": "tiny-node",
                                                   "requirements": lock}))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "tinydep_nodes2" / "__init__.py").read_text() == "VERSION = '0.1'\n"
    assert "its own requirements.txt is not read: custom_nodes/tiny-node.txt replaces it" in done.stdout
    assert "WARNING" not in done.stdout


@needs(HAVE_GIT, "git")
def test_a_wheel_whose_sha256_the_lock_does_not_list_fails_the_build_naming_the_entry(tmp_path):
    # A re-uploaded file under the pinned version: another sha256 than the one locked.
    _wheel(tmp_path / "wheels")
    repo, commit = _node(tmp_path, None)
    lock = _lock(tmp_path, "tiny-node", f"{PACKAGE}==0.1 --hash=sha256:{'0' * 64}\n")
    done = _install(tmp_path, _manifest(tmp_path, {"url": f"file://{repo}", "commit": commit, "name": "tiny-node",
                                                   "requirements": lock}))
    assert done.returncode == 1, done.stdout
    line = _failed(done)
    assert "custom node tiny-node" in line and "custom_nodes/tiny-node.txt" in line and "HASH" in line.upper()
    assert not (tmp_path / "site" / "tinydep_nodes2").exists()


@needs(HAVE_GIT, "git")
def test_a_locked_dependency_with_no_wheel_fails_instead_of_being_built_from_source(tmp_path):
    # Building an sdist would fetch setuptools unchecked: with wheels only, pip never gets that far.
    sdist = _sdist(tmp_path / "wheels", "0.3")
    repo, commit = _node(tmp_path, None)
    lock = _lock(tmp_path, "tiny-node", f"{PACKAGE}==0.3 --hash=sha256:{_sha256(sdist)}\n")
    done = _install(tmp_path, _manifest(tmp_path, {"url": f"file://{repo}", "commit": commit, "name": "tiny-node",
                                                   "requirements": lock}))
    assert done.returncode == 1, done.stdout
    line = _failed(done)
    assert "custom node tiny-node" in line and f"{PACKAGE}==0.3" in line
    assert "setuptools" not in done.stderr and "tar.gz" not in done.stderr


@needs(HAVE_GIT, "git")
def test_an_unlocked_entry_installs_its_own_requirements_with_a_warning_naming_it_and_the_lock_command(tmp_path):
    _wheel(tmp_path / "wheels")
    repo, commit = _node(tmp_path, f"{PACKAGE}\n")
    done = _install(tmp_path, _manifest(tmp_path, {"url": f"file://{repo}", "commit": commit, "name": "tiny-node"}))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "tinydep_nodes2").is_dir()   # as before: installed
    [warning] = [x for x in done.stdout.splitlines() if "WARNING" in x]
    assert "tiny-node" in warning and "without pins or hashes" in warning
    assert "pip-compile --generate-hashes --output-file images/worker/custom_nodes/tiny-node.txt" in warning
    assert "requirements: custom_nodes/tiny-node.txt" in warning


@needs(HAVE_GIT, "git")
def test_requirements_none_installs_a_node_without_requirements_and_fails_one_that_has_them(tmp_path):
    repo, commit = _node(tmp_path, None)
    done = _install(tmp_path, _manifest(tmp_path, {"url": f"file://{repo}", "commit": commit, "name": "tiny-node",
                                                   "requirements": "none"}))
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stdout
    (repo / "requirements.txt").write_text(f"{PACKAGE}\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "B")
    later = _git(repo, "rev-parse", "HEAD").strip()
    shutil.rmtree(tmp_path / "custom_nodes")
    done = _install(tmp_path, _manifest(tmp_path, {"url": f"file://{repo}", "commit": later, "name": "tiny-node",
                                                   "requirements": "none"}))
    assert done.returncode == 1, done.stdout
    line = _failed(done)
    assert "custom node tiny-node" in line and "`requirements: none`" in line and "pip-compile" in line
    assert not (tmp_path / "site").exists()


# -- the lock file and its pins --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "said"), [
    (f"{PACKAGE}==0.1\n", "without a hash"),
    (f"{PACKAGE}>=0.1 --hash=sha256:{'a' * 64}\n", "not an exact pin"),
    (f"-r other.txt\n{PACKAGE}==0.1 --hash=sha256:{'a' * 64}\n", "not an exact pin"),
    (f"{PACKAGE}==0.1 --index-url https://example.invalid/simple --hash=sha256:{'a' * 64}\n", "'--index-url'"),
    (f"{PACKAGE}==0.1 --hash=sha256:{'a' * 64}\n{PACKAGE}==0.2 --hash=sha256:{'b' * 64}\n", "twice"),
    ("# nothing\n", "pins nothing"),
])
def test_a_lock_that_is_not_pins_and_hashes_is_refused_naming_the_entry_and_the_line(tmp_path, body, said):
    from images.worker.custom_nodes import CustomNodesError, load_custom_nodes

    lock = _lock(tmp_path, "tiny-node", body)
    manifest = _manifest(tmp_path, {"url": "https://example.invalid/a/tiny-node.git", "commit": "a" * 40,
                                    "requirements": lock})
    with pytest.raises(CustomNodesError) as caught:
        load_custom_nodes(manifest)
    assert "custom_nodes[0] (tiny-node).requirements" in str(caught.value) and said in str(caught.value)


@pytest.mark.parametrize("value", ["../requirements.txt", "custom_nodes/../x.txt", "/etc/x.txt", "custom_nodes/x",
                                   ["custom_nodes/x.txt"]])
def test_requirements_outside_the_custom_nodes_folder_is_refused(tmp_path, value):
    from images.worker.custom_nodes import CustomNodesError, parse_custom_nodes

    raw = {"schema": 1, "custom_nodes": [{"url": "https://example.invalid/a/b.git", "commit": "a" * 40,
                                          "requirements": value}]}
    with pytest.raises(CustomNodesError, match=re.escape("(b).requirements must be `custom_nodes/<file>.txt`")):
        parse_custom_nodes(raw, "custom_nodes.yaml", tmp_path / "custom_nodes.yaml")


def test_a_lock_file_that_is_not_there_is_refused_naming_the_entry(tmp_path):
    from images.worker.custom_nodes import CustomNodesError, load_custom_nodes

    manifest = _manifest(tmp_path, {"url": "https://example.invalid/a/b.git", "commit": "a" * 40,
                                    "requirements": "custom_nodes/b.txt"})
    with pytest.raises(CustomNodesError, match=r"\(b\)\.requirements: .*b\.txt is not a regular file"):
        load_custom_nodes(manifest)


def _worker_context(tmp_path: Path, lock_body: str) -> Path:
    """A copy of images/worker whose custom_nodes.yaml names one node with that lock."""
    context = tmp_path / "worker"
    shutil.copytree(WORKER, context, ignore=shutil.ignore_patterns("__pycache__"))
    _lock(context, "tiny-node", lock_body)
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "custom_nodes": [
        {"url": "https://example.invalid/a/tiny-node.git", "commit": "a" * 40, "requirements":
         "custom_nodes/tiny-node.txt"}]}))
    return context


def _our_pin(name: str) -> str:
    from images.worker.custom_nodes import read_pins

    return dict(read_pins(WORKER / "requirements.txt", "requirements.txt"))[name]


def test_goldgate_build_refuses_a_lock_pinning_another_version_than_requirements_txt_naming_both(tmp_path):
    from goldgate.release.build import BuildFailed, check_node_types

    ours = _our_pin("urllib3")
    context = _worker_context(tmp_path, f"urllib3==1.26.20 --hash=sha256:{'a' * 64}\n")
    with pytest.raises(BuildFailed) as caught:
        check_node_types(context)
    message = str(caught.value)
    assert "tiny-node's custom_nodes/tiny-node.txt pins urllib3==1.26.20" in message
    assert f"requirements.txt urllib3=={ours}" in message and "nothing was built" in message
    # The same version, written another way, is no conflict.
    (context / "custom_nodes" / "tiny-node.txt").write_text(f"URLLib3=={ours} --hash=sha256:{'a' * 64}\n")
    check_node_types(context)


def test_two_locks_pinning_one_package_at_two_versions_are_refused_naming_both(tmp_path):
    from images.worker.custom_nodes import CustomNodesError, load_custom_nodes

    first = _lock(tmp_path, "a", f"{PACKAGE}==0.1 --hash=sha256:{'a' * 64}\n")
    second = _lock(tmp_path, "b", f"tinydep_nodes2==0.2 --hash=sha256:{'b' * 64}\n")
    manifest = _manifest(tmp_path, {"url": "https://example.invalid/x/a.git", "commit": "a" * 40, "requirements": first},
                         {"url": "https://example.invalid/x/b.git", "commit": "b" * 40, "requirements": second})
    with pytest.raises(CustomNodesError) as caught:
        load_custom_nodes(manifest)
    assert f"b's custom_nodes/b.txt pins {PACKAGE}==0.2, a's custom_nodes/a.txt {PACKAGE}==0.1" in str(caught.value)


def test_the_dockerfiles_check_pins_step_refuses_a_conflicting_lock_and_passes_an_agreeing_one(tmp_path):
    # What the image's step runs: the manifest and its locks in one folder, our requirements.txt named apart.
    ours = _our_pin("urllib3")
    lock = _lock(tmp_path, "tiny-node", f"urllib3==1.26.20 --hash=sha256:{'a' * 64}\n")
    manifest = _manifest(tmp_path, {"url": "https://example.invalid/a/tiny-node.git", "commit": "a" * 40,
                                    "requirements": lock})
    done = _run(tmp_path, "check-pins", str(manifest), str(WORKER / "requirements.txt"))
    assert done.returncode == 1
    assert "urllib3==1.26.20" in _failed(done) and f"urllib3=={ours}" in _failed(done)
    (tmp_path / lock).write_text(f"urllib3=={ours} --hash=sha256:{'a' * 64}\n")
    done = _run(tmp_path, "check-pins", str(manifest), str(WORKER / "requirements.txt"))
    assert done.returncode == 0, done.stderr


# -- what docker is sent and runs ------------------------------------------------------------------------------------

def test_docker_is_sent_the_locks_and_the_dockerfile_puts_them_where_the_manifest_names_them(tmp_path):
    from goldgate.local.image_store import sent_paths

    context = _worker_context(tmp_path, f"{PACKAGE}==0.1 --hash=sha256:{'a' * 64}\n")
    (context / "custom_nodes" / "notes.md").write_text("not a lock\n")
    sent = sent_paths(context)
    assert "custom_nodes/tiny-node.txt" in sent and "custom_nodes/notes.md" not in sent
    text = re.sub(r"\\\n", " ", (WORKER / "Dockerfile").read_text())
    copy = re.search(r"^COPY (.*) (\S+)$", next(line for line in text.splitlines()
                                                if line.startswith("COPY ") and "custom_nodes/*.txt" in line))
    assert copy is not None
    # custom_nodes.yaml is in /opt/goldgate/custom_nodes/: its `custom_nodes/<file>.txt` is there.
    assert copy.group(2).rstrip("/") == "/opt/goldgate/custom_nodes/custom_nodes"
    assert "custom_nodes.yaml" in copy.group(1).split()   # a source even while no lock exists


def test_the_worker_requirements_install_from_wheels_only_after_the_pins_are_checked():
    lines = [line for line in re.sub(r"\\\n", " ", (WORKER / "Dockerfile").read_text()).splitlines()
             if line.startswith(("RUN ", "COPY "))]
    install = next(i for i, line in enumerate(lines) if "pip install" in line and "requirements.txt" in line)
    assert "--only-binary=:all:" in lines[install].split() and "--require-hashes" in lines[install].split()
    check = next(i for i, line in enumerate(lines) if "custom_nodes.py check-pins" in line)
    copied = next(i for i, line in enumerate(lines) if line.startswith("COPY requirements.txt "))
    assert copied < check < install
    assert lines[check].split()[-1] == "/opt/goldgate/requirements.txt"
