"""`goldgate build` compares each workflow with what PROD's pushed image's build recorded (`workflow_renders`) when
the image is in a registry: an edit that changes no render (the description, a node's `_meta` title) is not named
there either, as it is not against a local image's snapshot."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_review28_wffix_workflow_version_reuse import _context, _edit, _pushed

from goldgate.release import build as builds


@pytest.mark.parametrize("edit", [
    pytest.param(lambda body: body.update(description="SDXL, described better"), id="description"),
    pytest.param(lambda body: body["graph"]["3"].update(_meta={"title": "Sampler"}), id="_meta title"),
])
def test_an_edit_that_changes_no_render_is_not_named_against_a_recorded_build(tmp_path: Path, edit: Any) -> None:
    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    _pushed(home, context, "1" * 40)
    _edit(context, "sdxl-txt2img", edit)
    assert builds.reused_workflow_versions(context, home, "cloud", project_dir=tmp_path / "checkout") == []


def test_after_a_rollback_prod_is_the_image_it_went_back_to(tmp_path: Path) -> None:
    from test_review28_wffix_workflow_version_reuse import _denoise, _on_prod

    from goldgate.release.ledger import Ledger

    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    first = _pushed(home, context, "1" * 40)                  # PROD ran it first
    _edit(context, "sdxl-txt2img", _denoise)                   # then a release whose graph changed, same version
    second = "registry.example/team/worker@sha256:" + "b" * 64
    identity = builds.identity_for(context, "2026.11.1", commit="2" * 40)
    Ledger(home).append("build", **builds.BuildResult(second, identity.tag, "registry.example/team/worker",
                                                      "sha256:" + "b" * 64, identity, "docker").to_dict(),
                        trigger="manual")
    _on_prod(home, second, "cloud")
    assert builds.reused_workflow_versions(context, home, "cloud", project_dir=tmp_path / "checkout") == []
    Ledger(home).append("rollback", phase="outcome", stack="prod", target="cloud", image=first, before=second,
                        after=first, pinned=first, prod_image=first, outcome="rolled_back")
    [line] = builds.reused_workflow_versions(context, home, "cloud", project_dir=tmp_path / "checkout")
    assert line.startswith(f"workflow sdxl-txt2img differs from the one PROD runs ({first})"), line
