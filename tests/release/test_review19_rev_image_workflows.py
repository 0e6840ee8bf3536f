"""The cloud deploy's workflows for the API Worker, where the checkout is not laid out as the tests' one is.

A cloud deploy gives the API Worker the workflows its image was built with: the checkout's when their hash is the
build's, else the build commit's read with git. Before:
- a project in a subdirectory of its git repository (a monorepo) read `<commit>:images/worker/workflows`, a path
  git takes from the repository's root, so every rollback to an image with other workflows was refused;
- a committed workflow whose name starts with a dot was hashed by the build and bundled by the program, but not
  read from git, so the same rollback was refused as "built from uncommitted changes";
- a relative GOLDGATE_PROJECT_DIR named the checkout's workflows by a relative path the program, run in the
  project's directory, did not find: `pulumi up` failed after the image was pinned;
- a GOLDGATE_WORKFLOWS_DIR exported in the shell was bundled where the deploy said "this checkout's".

Driven through the real deployer, the pulumi stand-in (whose `up` bundles the workflows as the program does) and
the RunPod emulator, as the lead's tests of the feature are."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

from test_cloud_deployer import A, B, deployer, emulator, project

from goldgate.release.build import identity_for
from goldgate.release.deployers.cloud import CloudDeployer
from goldgate.release.deployers.image_workflows import WORKFLOWS_ENV
from goldgate.release.ledger import KEY_ENV, Ledger

__all__ = ["emulator", "project"]   # the cloud deployer tests' fixtures

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = "sdxl-txt2img.json"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def _write_workflows(project: Path, version: str, extra: str | None = None) -> None:
    workflows = project / "images" / "worker" / "workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    doc = json.loads((REPO / "images" / "worker" / "workflows" / WORKFLOW).read_text())
    doc["version"] = f"sdxl-txt2img@{version}"
    (workflows / WORKFLOW).write_text(json.dumps(doc, indent=1))
    if extra:
        (workflows / extra).write_text(json.dumps({**doc, "id": "extra", "version": f"extra@{version}"}))


def _commit(repo: Path, paths: str, message: str) -> str:
    if not (repo / ".git").exists():
        _git(repo, "init", "-q")
        _git(repo, "config", "user.email", "ci@example.com")
        _git(repo, "config", "user.name", "ci")
    _git(repo, "add", "-A", "--", paths)
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _built(home: Path, image: str, project: Path, commit: str) -> None:
    """A build of `image` from the project as it is now, recorded as `goldgate build` records it."""
    identity = identity_for(project / "images" / "worker", "2026.11.0", commit=commit)
    Ledger(home).append("build", image=image, release_id=identity.tag, git_commit=identity.git_commit,
                        models_sha256=identity.models_sha256, workflows_sha256=identity.workflows_sha256,
                        target="docker")


def _served(project: Path) -> dict[str, str]:
    return json.loads((project.parent / "pulumi-state" / "prod.json").read_text())["api_workflows"]


def test_a_rollback_in_a_project_below_its_repositorys_root_reads_the_earlier_workflows(project, tmp_path):
    home, root = tmp_path / "home", project.parent      # the repository holds the project as `project/`
    _write_workflows(project, "1.0.0")
    _built(home, A, project, _commit(root, "project/images", "workflows 1.0.0"))
    _write_workflows(project, "2.0.0")
    _built(home, B, project, _commit(root, "project/images", "workflows 2.0.0"))
    d = deployer(project)
    d.home = home
    d.deploy("prod", B, progress=lambda _m: None)
    log: list[str] = []
    d.deploy("prod", A, progress=log.append)            # the rollback, from the newer checkout
    assert _served(project)[WORKFLOW] == "sdxl-txt2img@1.0.0"
    assert any("workflows of commit" in line for line in log), log


def test_a_committed_workflow_named_with_a_leading_dot_is_read_from_git_as_the_build_hashed_it(project, tmp_path):
    home = tmp_path / "home"
    _write_workflows(project, "1.0.0", extra=".canary.json")
    _built(home, A, project, _commit(project, ".", "workflows 1.0.0"))
    _write_workflows(project, "2.0.0", extra=".canary.json")
    _commit(project, ".", "workflows 2.0.0")
    d = deployer(project)
    d.home = home
    d.deploy("prod", A, progress=lambda _m: None)
    assert _served(project) == {WORKFLOW: "sdxl-txt2img@1.0.0", ".canary.json": "extra@1.0.0"}


def test_a_relative_project_dir_bundles_the_checkouts_workflows(project, tmp_path, monkeypatch):
    home = tmp_path / "home"
    _write_workflows(project, "1.0.0")
    _built(home, A, project, _commit(project, ".", "workflows 1.0.0"))
    monkeypatch.chdir(project.parent)
    settings = replace(deployer(project).settings, project_dir=Path(project.name))  # GOLDGATE_PROJECT_DIR=project
    d = CloudDeployer(settings, home=home)
    d.deploy("prod", A, progress=lambda _m: None)
    assert _served(project)[WORKFLOW] == "sdxl-txt2img@1.0.0"


def test_a_workflows_dir_exported_in_the_shell_is_not_what_the_checkouts_deploy_bundles(project, tmp_path,
                                                                                       monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    _write_workflows(elsewhere, "9.9.9")
    monkeypatch.setenv(WORKFLOWS_ENV, str(elsewhere / "images" / "worker" / "workflows"))
    d = deployer(project)
    d.home = tmp_path / "empty-home"                    # no build recorded: the checkout's, and it says so
    log: list[str] = []
    d.deploy("prod", A, progress=log.append)
    assert any("serves this checkout's" in line for line in log), log
    assert _served(project) == {p.name: json.loads(p.read_text())["version"]
                                for p in sorted((REPO / "images/worker/workflows").glob("*.json"))}


def test_a_build_recorded_without_the_ledger_key_is_named_untrusted_not_missing(project, tmp_path, monkeypatch):
    # Under GOLDGATE_LEDGER_KEY a build entry recorded without it (an operator's build on a laptop) is not trusted,
    # so the checkout's workflows are bundled; the deploy said the ledger recorded none, which it did.
    home = tmp_path / "home"
    _write_workflows(project, "1.0.0")
    monkeypatch.delenv(KEY_ENV, raising=False)
    _built(home, A, project, _commit(project, ".", "workflows 1.0.0"))
    monkeypatch.setenv(KEY_ENV, "k" * 40)
    d = deployer(project)
    d.home = home
    log: list[str] = []
    d.deploy("prod", A, progress=log.append)
    (note,) = [line for line in log if "serves this checkout's" in line]
    assert "not trusted" in note and "carries no MAC" in note and "records no workflows" not in note, note
