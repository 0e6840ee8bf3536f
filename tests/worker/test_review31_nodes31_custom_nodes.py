"""Custom nodes are declared in images/worker/custom_nodes.yaml, each pinned to a full commit, and installed by the
Dockerfile's step (`custom_nodes.py install`). Before, a team hand-wrote Dockerfile lines and nothing checked the pin.
The install runs here as the Dockerfile runs it, outside docker, on a custom node served from a local git repository
(file://): no network. Its requirements.txt names a local wheel, installed with pip into a scratch folder
(PIP_TARGET, PIP_NO_INDEX), so the venv is left as it was."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ci_policy import needs
from custom_node_support import git, wheel

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "images" / "worker"
SCRIPT = WORKER / "custom_nodes.py"
HAVE_GIT = shutil.which("git") is not None


def _git(repo: Path, *args: str) -> str:
    return git(repo, *args)


def _wheel(where: Path, version: str = "0.1") -> Path:
    return wheel(where, "tinydep-nodes31", version, b"VALUE = 31\n")


@pytest.fixture
def node_repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A custom node's repository: commit A (tagged v1), then B on its branch. (path, A, B)"""
    repo = tmp_path / "tiny-node-src"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "__init__.py").write_text('MARK = "A"\nNODE_CLASS_MAPPINGS = {"Tiny Invert": object}\n')
    (repo / "requirements.txt").write_text(f"{_wheel(tmp_path)}\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "A")
    first = _git(repo, "rev-parse", "HEAD").strip()
    _git(repo, "tag", "v1")
    (repo / "__init__.py").write_text('MARK = "B"\nNODE_CLASS_MAPPINGS = {"Tiny Invert": object}\n')
    _git(repo, "commit", "-q", "-am", "B")
    return repo, first, _git(repo, "rev-parse", "HEAD").strip()


def _manifest(tmp_path: Path, **entry: object) -> Path:
    path = tmp_path / "custom_nodes.yaml"
    path.write_text(yaml.safe_dump({"schema": 1, "custom_nodes": [entry]}))
    return path


def _install(tmp_path: Path, manifest: Path, **env_more: str) -> subprocess.CompletedProcess:
    """The Dockerfile's step: `python -B custom_nodes.py install <yaml> <dest>`, pip kept off the index and the venv."""
    env = {**os.environ, "PIP_TARGET": str(tmp_path / "site"), "PIP_NO_INDEX": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", **env_more}
    return subprocess.run([sys.executable, "-B", str(SCRIPT), "install", str(manifest), str(tmp_path / "custom_nodes")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env, check=False)


@needs(HAVE_GIT, "git")
def test_the_install_checks_out_the_pinned_commit_and_installs_its_requirements(tmp_path, node_repo):
    repo, first, _ = node_repo
    manifest = _manifest(tmp_path, url=f"file://{repo}", commit=first, name="tiny-node", nodes=["Tiny Invert"])
    done = _install(tmp_path, manifest)
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "custom_nodes" / "tiny-node"
    # The pinned commit, not the branch's newer head.
    assert 'MARK = "A"' in (installed / "__init__.py").read_text()
    assert _git(installed, "rev-parse", "HEAD").strip() == first
    assert (tmp_path / "site" / "tinydep_nodes31" / "__init__.py").is_file()   # its requirements.txt, installed
    assert f"tiny-node at {first}" in done.stdout


@needs(HAVE_GIT, "git")
def test_a_requirement_that_does_not_install_fails_the_build_naming_the_entry(tmp_path, node_repo):
    repo, first, _ = node_repo
    _git(repo, "checkout", "-q", first)
    (repo / "requirements.txt").write_text("no-such-package-nodes31==1.0\n")
    _git(repo, "commit", "-q", "-am", "broken requirement")
    broken = _git(repo, "rev-parse", "HEAD").strip()
    done = _install(tmp_path, _manifest(tmp_path, url=f"file://{repo}", commit=broken, name="tiny-node"))
    assert done.returncode == 1
    [line] = [x for x in done.stderr.splitlines() if "FAILED" in x]
    assert "custom node tiny-node" in line and "requirements.txt" in line and "no-such-package-nodes31" in line


@needs(HAVE_GIT, "git")
def test_a_requirement_that_would_change_the_base_images_torch_fails_the_build_naming_the_entry(tmp_path, node_repo):
    # The held packages are torch and its kin; here a stand-in, installed at 0.1 where the script's python sees it.
    repo, first, _ = node_repo
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--target", str(site),
                    str(_wheel(tmp_path))], check=True, capture_output=True, env={**os.environ, "PIP_TARGET": ""})
    _git(repo, "checkout", "-q", first)
    (repo / "requirements.txt").write_text(f"{_newer(tmp_path)}\n")
    _git(repo, "commit", "-q", "-am", "needs tinydep 0.2")
    newer = _git(repo, "rev-parse", "HEAD").strip()
    manifest = _manifest(tmp_path, url=f"file://{repo}", commit=newer, name="tiny-node")
    done = _install(tmp_path, manifest, PYTHONPATH=str(site), GOLDGATE_TEST_HELD_PACKAGES="tinydep-nodes31",
                    PIP_TARGET=str(tmp_path / "site-2"))
    assert done.returncode == 1, done.stdout
    [line] = [x for x in done.stderr.splitlines() if "FAILED" in x]
    assert "custom node tiny-node" in line and "tinydep-nodes31 0.1 held" in line
    assert not (tmp_path / "site-2" / "tinydep_nodes31").exists()


def _newer(tmp_path: Path) -> Path:
    (tmp_path / "newer").mkdir(exist_ok=True)
    return _wheel(tmp_path / "newer", "0.2")


@needs(HAVE_GIT, "git")
def test_a_commit_the_repository_lacks_fails_the_build_naming_the_entry(tmp_path, node_repo):
    repo, _, _ = node_repo
    done = _install(tmp_path, _manifest(tmp_path, url=f"file://{repo}", commit="f" * 40))
    assert done.returncode == 1
    assert "custom node tiny-node-src" in done.stderr and "f" * 12 in done.stderr   # the name taken from the url


@pytest.mark.parametrize(("commit", "said"), [
    ("main", "branch or tag"), ("v1.2.0", "branch or tag"), ("a1b2c3d", "abbreviated"), (1234567, "quote it"),
    ("g" * 40, "branch or tag")])
def test_a_branch_a_tag_or_a_short_sha_is_refused_saying_why(commit, said):
    from images.worker.custom_nodes import CustomNodesError, parse_custom_nodes

    raw = {"schema": 1, "custom_nodes": [{"url": "https://example.invalid/a/b.git", "commit": commit}]}
    with pytest.raises(CustomNodesError) as caught:
        parse_custom_nodes(raw, "custom_nodes.yaml")
    message = str(caught.value)
    assert "custom_nodes[0] (b).commit" in message and said in message
    if said == "branch or tag":
        assert "40-hex" in message and "git ls-remote" in message


@pytest.mark.parametrize(("entries", "said"), [
    ([{"url": "https://example.invalid/a/b.git"}], "lacks 'commit'"),
    ([{"url": "https://example.invalid/a/b.git", "commit": "a" * 40, "branch": "main"}], "unknown field(s) branch"),
    ([{"url": "https://user:tok@example.invalid/a/b.git", "commit": "a" * 40}], "carries credentials"),
    ([{"url": "ftp://example.invalid/b.git", "commit": "a" * 40}], "git repository URL"),
    ([{"url": "https://example.invalid/a/b.git", "commit": "a" * 40, "name": "../up"}], "folder name"),
    ([{"url": "https://example.invalid/a/b.git", "commit": "a" * 40},
      {"url": "https://example.invalid/c/b.git", "commit": "b" * 40}], "two entries install into custom_nodes/b"),
    ([{"url": "https://example.invalid/a/b.git", "commit": "a" * 40, "nodes": ["X"]},
      {"url": "https://example.invalid/c/d.git", "commit": "b" * 40, "nodes": ["X"]}], "listed by both b and d"),
])
def test_a_malformed_entry_is_refused_naming_it(entries, said):
    from images.worker.custom_nodes import CustomNodesError, parse_custom_nodes

    with pytest.raises(CustomNodesError, match=re.escape(said)):
        parse_custom_nodes({"schema": 1, "custom_nodes": entries}, "custom_nodes.yaml")


def test_the_shipped_file_installs_nothing_and_an_uppercase_sha_is_kept_lowercase():
    from images.worker.custom_nodes import load_custom_nodes, parse_custom_nodes

    shipped = load_custom_nodes(WORKER / "custom_nodes.yaml")
    assert shipped.entries == () and not shipped.declares_anything
    [entry] = parse_custom_nodes({"schema": 1, "custom_nodes": [
        {"url": "git@example.invalid:team/Nodes.git", "commit": "AB" * 20, "nodes": ["Image Save"]}]}).entries
    assert (entry.name, entry.commit, entry.nodes) == ("Nodes", "ab" * 20, ("Image Save",))


def test_the_dockerfile_installs_the_custom_nodes_after_the_models_and_before_the_release():
    from goldgate.local.image_store import sent_paths

    lines = (WORKER / "Dockerfile").read_text().splitlines()
    step = next(i for i, line in enumerate(lines) if "custom_nodes.py install" in line)
    copy = next(i for i, line in enumerate(lines) if line.startswith("COPY custom_nodes.py custom_nodes.yaml "))
    last_model = max(i for i, line in enumerate(lines) if "fetch_model.py http" in line)
    release = next(i for i, line in enumerate(lines) if line.startswith("ARG WORKFLOW_VERSION"))
    deps = next(i for i, line in enumerate(lines) if "pip install" in line and "--require-hashes" in line)
    # A node added or re-pinned re-downloads no model; a release (its identity) reinstalls no node.
    assert last_model < copy < step < release < deps
    assert "USER" not in "\n".join(lines[:step])    # root installs them; the worker user only reads them
    assert {"custom_nodes.yaml", "custom_nodes.py"} <= sent_paths(WORKER)   # .dockerignore sends both
