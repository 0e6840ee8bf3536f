"""A workflow's graph edited without raising its `version` went unnoticed: jobs, logs and metrics name a workflow
by `<id>@<version>` alone, so PROD's renders and the new image's were one to them. The build's workflow checks
compare each workflow file with the one PROD's image ships (its local snapshot, or for a pushed image the
workflows its build recorded, read from git) and say which differ under the same version. Said, not refused: a
team may keep the version of a change meant to be invisible (raising it fails the jobs that meet a worker of the
other release while workers roll over: docs/RUNBOOK.md, "Ship a new version of a workflow")."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from goldgate.release import build as builds
from goldgate.release.ledger import Ledger

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "images" / "worker"


def _context(root: Path) -> Path:
    """The worker's build context as a team's checkout holds it."""
    context = root / "images" / "worker"
    shutil.copytree(WORKER, context, ignore=shutil.ignore_patterns("__pycache__"))
    return context


def _edit(context: Path, workflow: str, change: Any) -> None:
    path = context / "workflows" / f"{workflow}.json"
    body = json.loads(path.read_text(encoding="utf-8"))
    change(body)
    path.write_text(json.dumps(body, indent=2), encoding="utf-8")


def _on_prod(home: Path, image: str, target: str) -> None:
    """The ledger's record of a promotion that left PROD on `image`."""
    Ledger(home).append("promotion", phase="outcome", stack="prod", target=target, image=image, after=image,
                        pinned=image, prod_image=image, outcome="promoted")


def _released_locally(home: Path, context: Path) -> str:
    """A local image built from `context` (a snapshot in the store) and promoted to PROD."""
    image = builds.build_local(context, home, builds.identity_for(context, "2026.11.0", commit="0" * 40)).image
    _on_prod(home, image, "local")
    return image


def _denoise(body: dict[str, Any]) -> None:
    body["graph"]["3"]["inputs"]["denoise"] = 0.8


def test_a_graph_edited_under_the_version_prod_runs_is_named(tmp_path: Path) -> None:
    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    image = _released_locally(home, context)
    _edit(context, "sdxl-txt2img", _denoise)
    [line] = builds.reused_workflow_versions(context, home, "local")
    assert line.startswith(f"workflow sdxl-txt2img differs from the one PROD runs ({image}) in its graph (node 3), "
                           "under the same version sdxl-txt2img@1.0.0"), line
    assert "raise its `version`" in line and "Ship a new version of a workflow" in line, line


def test_a_parameter_changed_under_the_same_version_is_named_too(tmp_path: Path) -> None:
    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    _released_locally(home, context)

    def more_steps(body: dict[str, Any]) -> None:
        body["graph"]["3"]["inputs"]["steps"] = 30
        next(p for p in body["parameters"] if p["name"] == "steps")["default"] = 30

    def shorter_prompts(body: dict[str, Any]) -> None:
        next(p for p in body["parameters"] if p["name"] == "prompt")["max"] = 500

    _edit(context, "flux-schnell-lora", shorter_prompts)
    _edit(context, "sdxl-txt2img", more_steps)
    lines = builds.reused_workflow_versions(context, home, "local")
    assert [line.split(" differs")[0] for line in lines] == ["workflow flux-schnell-lora", "workflow sdxl-txt2img"]
    assert " in its parameters (prompt), under the same version flux-schnell-lora@1.0.0" in lines[0], lines[0]
    assert "in its graph (node 3) and its parameters (steps)" in lines[1], lines[1]


@pytest.mark.parametrize("edit", [
    pytest.param(lambda body: (_denoise(body), body.update(version="sdxl-txt2img@1.1.0")), id="version raised"),
    pytest.param(lambda body: body.update(description="SDXL, described better"), id="description"),
    pytest.param(lambda body: body["graph"]["3"].update(_meta={"title": "Sampler"}), id="_meta title"),
    pytest.param(lambda body: None, id="re-indented"),
])
def test_what_changes_no_render_or_raises_the_version_is_not_named(tmp_path: Path, edit: Any) -> None:
    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    _released_locally(home, context)
    _edit(context, "sdxl-txt2img", edit)
    assert builds.reused_workflow_versions(context, home, "local") == []


def test_nothing_is_said_without_a_prod_image_and_a_new_workflow_is_not_compared(tmp_path: Path) -> None:
    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    builds.build_local(context, home, builds.identity_for(context, "2026.11.0", commit="0" * 40))
    _edit(context, "sdxl-txt2img", _denoise)
    # Built (STAGING may run it), never on PROD: no client has met its sdxl-txt2img@1.0.0 yet.
    assert builds.reused_workflow_versions(context, home, "local") == []
    # PROD on the cloud target does not speak for the local one's.
    _on_prod(home, "registry.example/team/worker@sha256:" + "c" * 64, "cloud")
    assert builds.reused_workflow_versions(context, home, "local") == []
    _released_locally(home, _context(tmp_path / "released"))
    shutil.copy(context / "workflows" / "sdxl-txt2img.json", context / "workflows" / "sdxl-team.json")
    _edit(context, "sdxl-team", lambda body: body.update(id="sdxl-team", version="sdxl-team@1.0.0"))
    assert [line.split(" differs")[0] for line in builds.reused_workflow_versions(context, home, "local")] == [
        "workflow sdxl-txt2img"]


def _git(project: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                           *args], capture_output=True, text=True, check=True).stdout.strip()


def _pushed(home: Path, context: Path, commit: str, recorded: bool = True) -> str:
    """A docker build of `context` from `commit`, recorded in the ledger as `goldgate build` records it (`recorded`:
    False, as builds recorded it before they carried `workflow_renders`), then promoted to the cloud's PROD."""
    image = "registry.example/team/worker@sha256:" + "a" * 64
    identity = builds.identity_for(context, "2026.11.0", commit=commit)
    result = builds.BuildResult(image, identity.tag, "registry.example/team/worker", "sha256:" + "a" * 64, identity,
                                "docker")
    record = result.to_dict()
    if not recorded:
        del record["workflow_renders"]
    Ledger(home).append("build", **record, trigger="manual")
    _on_prod(home, image, "cloud")
    return image


def test_a_pushed_prod_image_is_compared_with_what_its_build_recorded(tmp_path: Path) -> None:
    """The cloud's PROD image is in a registry, and a CI build's checkout need not hold the commit it was built from
    (not a git checkout at all here): its build's ledger entry says what renders under each `<id>@<version>`."""
    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    image = _pushed(home, context, "1" * 40)
    entry = next(e for e in Ledger(home).entries() if e.kind == "build")
    assert sorted(entry.get("workflow_renders")) == ["flux-schnell-lora@1.0.0", "sdxl-img2img@1.0.0",
                                                     "sdxl-txt2img@1.0.0"]
    assert builds.reused_workflow_versions(context, home, "cloud", project_dir=tmp_path / "checkout") == []
    _edit(context, "sdxl-txt2img", lambda body: body["graph"]["3"]["inputs"].update(cfg=7))   # 7.0 as 7: no change
    assert builds.reused_workflow_versions(context, home, "cloud", project_dir=tmp_path / "checkout") == []
    _edit(context, "sdxl-txt2img", _denoise)
    [line] = builds.reused_workflow_versions(context, home, "cloud", project_dir=tmp_path / "checkout")
    assert line.startswith(f"workflow sdxl-txt2img differs from the one PROD runs ({image}) in its graph or "
                           "parameters, under the same version sdxl-txt2img@1.0.0"), line


def test_an_image_built_before_builds_recorded_renders_is_compared_with_its_commits_workflows(tmp_path: Path) -> None:
    """Its workflows are the ones of the commit it was built from, read from git as the cloud deploy reads them."""
    project, home = tmp_path / "checkout", tmp_path / "home"
    context = _context(project)
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "release")
    image = _pushed(home, context, _git(project, "rev-parse", "HEAD"), recorded=False)
    assert builds.reused_workflow_versions(context, home, "cloud", project_dir=project) == []
    _edit(context, "sdxl-txt2img", _denoise)
    [line] = builds.reused_workflow_versions(context, home, "cloud", project_dir=project)
    assert line.startswith(f"workflow sdxl-txt2img differs from the one PROD runs ({image}) in its graph (node 3)")
