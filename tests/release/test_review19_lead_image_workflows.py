"""A cloud deploy gives the API Worker the workflows its image was built with, not the checkout's.

The Worker bundles its workflows at each `pulumi up`, from the machine that runs it; a worker runs only the
workflows, at the versions, its image bakes. Before, a cloud deploy always bundled the checkout's: the automatic
rollback of a release that changed a workflow's version (run from that release's commit), or `goldgate rollback`
run from main, put back the earlier image beside the newer workflows, and every job of that workflow failed
(`workflow version mismatch`) on the release PROD went back to because it worked.

Driven through the real deployer, the pulumi stand-in (whose `up` bundles the workflows as the program does:
infra.worker_bundle.image_workflows_dir) and the RunPod emulator, in a project that is a real git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_cloud_deployer import A, B, commands, deployer, emulator, project

from goldgate.release.build import identity_for, workflows_sha256
from goldgate.release.deployers.cloud import CloudDeployFailed
from goldgate.release.deployers.image_workflows import WORKFLOWS_ENV
from goldgate.release.ledger import Ledger
from infra.worker_bundle import BundleError, collect, image_workflows_dir

__all__ = ["emulator", "project"]   # the cloud deployer tests' fixtures

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = "sdxl-txt2img.json"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def _commit_workflows(repo: Path, version: str) -> str:
    """Commit the project's workflows with sdxl-txt2img at `version`; the commit's sha."""
    workflows = repo / "images" / "worker" / "workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    doc = json.loads((REPO / "images" / "worker" / "workflows" / WORKFLOW).read_text())
    doc["version"] = f"sdxl-txt2img@{version}"
    (workflows / WORKFLOW).write_text(json.dumps(doc, indent=1))
    if not (repo / ".git").exists():
        _git(repo, "init", "-q")
        _git(repo, "config", "user.email", "ci@example.com")
        _git(repo, "config", "user.name", "ci")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"workflows {version}")
    return _git(repo, "rev-parse", "HEAD")


def _built(home: Path, image: str, project: Path) -> None:
    """A build of `image` from the project as it is now, recorded as `goldgate build` records it."""
    identity = identity_for(project / "images" / "worker", "2026.11.0", commit=_git(project, "rev-parse", "HEAD"))
    Ledger(home).append("build", image=image, release_id=identity.tag, git_commit=identity.git_commit,
                        models_sha256=identity.models_sha256, workflows_sha256=identity.workflows_sha256,
                        target="docker")


def _served(project: Path) -> dict[str, str]:
    state = json.loads((project.parent / "pulumi-state" / "prod.json").read_text())
    return state["api_workflows"]


def test_a_rollback_from_a_newer_checkout_gives_the_worker_the_earlier_images_workflows(project, tmp_path):
    home = tmp_path / "home"
    _commit_workflows(project, "1.0.0")
    _built(home, A, project)                       # the release PROD goes back to
    _commit_workflows(project, "2.0.0")
    _built(home, B, project)                       # the release that changed the workflow's version
    d = deployer(project)
    d.home = home
    d.deploy("prod", B, progress=lambda _m: None)
    assert _served(project)[WORKFLOW] == "sdxl-txt2img@2.0.0"
    log: list[str] = []
    d.deploy("prod", A, progress=log.append)       # the rollback, from the newer release's checkout
    assert _served(project)[WORKFLOW] == "sdxl-txt2img@1.0.0"
    assert any("workflows of commit" in line and A in line for line in log), log
    # The checkout is left as it was, and the next deploy of the newer release serves its own again.
    assert json.loads((project / "images/worker/workflows" / WORKFLOW).read_text())["version"].endswith("@2.0.0")
    d.deploy("prod", B, progress=lambda _m: None)
    assert _served(project)[WORKFLOW] == "sdxl-txt2img@2.0.0"


def test_an_image_built_from_this_checkout_gets_the_checkouts_workflows(project, tmp_path):
    home = tmp_path / "home"
    _commit_workflows(project, "1.0.0")
    _built(home, A, project)
    d = deployer(project)
    d.home = home
    log: list[str] = []
    d.deploy("prod", A, progress=log.append)
    assert any("this checkout's workflows, the ones" in line for line in log), log
    assert _served(project)[WORKFLOW] == "sdxl-txt2img@1.0.0"
    assert WORKFLOWS_ENV not in d._stack("prod").workspace.env_vars   # named for the deploy's `up` alone


def test_workflows_neither_the_checkout_nor_git_holds_are_refused_before_anything_changes(project, tmp_path):
    home = tmp_path / "home"
    _commit_workflows(project, "1.0.0")
    Ledger(home).append("build", image=B, release_id="2026.11.0-gdeadbeef-m0", git_commit="d" * 40,
                        workflows_sha256="f" * 64, target="docker")
    before = (project / "stacks" / "Pulumi.prod.yaml").read_text()
    d = deployer(project)
    d.home = home
    with pytest.raises(CloudDeployFailed, match=r"not deploying .* to prod: .*built with other workflows.*"
                                                r"cannot read commit dddddddddddd.*git fetch origin"):
        d.deploy("prod", B, progress=lambda _m: None)
    assert (project / "stacks" / "Pulumi.prod.yaml").read_text() == before
    ran = commands(project) if (project.parent / "pulumi-commands.jsonl").exists() else []
    assert not [argv for argv in ran if "up" in argv or "set" in argv]


def test_an_image_built_from_uncommitted_workflows_is_refused_from_another_checkout(project, tmp_path):
    home = tmp_path / "home"
    _commit_workflows(project, "1.0.0")
    doc_path = project / "images/worker/workflows" / WORKFLOW
    committed = doc_path.read_text()
    doc_path.write_text(committed.replace("sdxl-txt2img@1.0.0", "sdxl-txt2img@1.0.1-dirty"))
    _built(home, A, project)                      # built from the edited tree, recorded at HEAD
    doc_path.write_text(committed)
    d = deployer(project)
    d.home = home
    with pytest.raises(CloudDeployFailed, match="uncommitted changes"):
        d.deploy("prod", A, progress=lambda _m: None)


def test_an_image_the_ledger_has_no_workflows_for_gets_the_checkouts_and_the_deploy_says_so(project, tmp_path):
    d = deployer(project)
    d.home = tmp_path / "empty-home"
    log: list[str] = []
    d.deploy("prod", A, progress=log.append)
    assert any(f"the ledger records no workflows for {A}" in line for line in log), log
    assert _served(project) == {p.name: json.loads(p.read_text())["version"]
                                for p in sorted((REPO / "images/worker/workflows").glob("*.json"))}


def test_the_build_records_the_workflows_the_bundle_takes(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.json").write_text('{"version": "a@1"}')
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.json").write_text('{"version": "a@2"}')
    assert workflows_sha256(one) != workflows_sha256(two)
    (two / "a.json").write_text('{"version": "a@1"}')
    (two / "notes.txt").write_text("not bundled")
    assert workflows_sha256(one) == workflows_sha256(two)
    identity = identity_for(REPO / "images" / "worker", "2026.11.0", commit="c" * 40)
    assert identity.workflows_sha256 == workflows_sha256(REPO / "images" / "worker" / "workflows")


def test_the_program_bundles_the_directory_the_deployer_names_and_refuses_an_empty_one(tmp_path, monkeypatch):
    named = tmp_path / "workflows"
    named.mkdir()
    monkeypatch.setenv(WORKFLOWS_ENV, str(named))
    with pytest.raises(BundleError, match=r"holds no workflows"):
        image_workflows_dir("prod")
    doc = json.loads((REPO / "images/worker/workflows" / WORKFLOW).read_text())
    doc["version"] = "sdxl-txt2img@0.1.0"
    (named / WORKFLOW).write_text(json.dumps(doc))
    assert image_workflows_dir("prod") == named
    module = next(f for f in collect(workflows_dir=image_workflows_dir("prod")).files
                  if f.name == "bundled_workflows.py")
    assert "sdxl-txt2img@0.1.0" in module.content.decode() and "flux-schnell" not in module.content.decode()
    monkeypatch.delenv(WORKFLOWS_ENV)
    assert image_workflows_dir("prod") == REPO / "images" / "worker" / "workflows"


def test_the_ci_jobs_that_can_roll_back_check_out_the_history_the_deploy_reads_workflows_from():
    import yaml

    jobs = 0
    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        for name, job in yaml.safe_load(path.read_text(encoding="utf-8"))["jobs"].items():
            runs = " ".join(str(step.get("run", "")) for step in job.get("steps", []))
            if "goldgate promote" in runs or "goldgate rollback" in runs:
                jobs += 1
                checkout = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@"))
                assert checkout.get("with", {}).get("fetch-depth") == 0, f"{path.name}: job {name}"
    assert jobs == 2
