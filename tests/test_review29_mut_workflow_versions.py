"""Review 29 (mut): `goldgate build`'s warning of a workflow changed under the version PROD runs. A workflow whose
version was raised is not named against PROD's recorded build (PROD has no render of that version to differ from);
parameters that only changed order are named, as "their order", against a local image's snapshot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_review28_wffix_workflow_version_reuse import _context, _denoise, _edit, _pushed, _released_locally

from goldgate.release import build as builds


def _raised(body: dict) -> None:
    _denoise(body)
    body["version"] = "9.9.9"


def _version() -> str:
    shipped = Path(__file__).resolve().parents[1] / "images" / "worker" / "workflows" / "sdxl-txt2img.json"
    return json.loads(shipped.read_text(encoding="utf-8"))["version"]


def test_a_raised_version_is_not_named_against_a_recorded_build(tmp_path: Path) -> None:
    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    _pushed(home, context, "1" * 40)
    _edit(context, "sdxl-txt2img", _raised)
    assert builds.reused_workflow_versions(context, home, "cloud", project_dir=tmp_path / "checkout") == []
    _edit(context, "sdxl-txt2img", lambda body: body.update(version=_version()))   # back under PROD's
    [line] = builds.reused_workflow_versions(context, home, "cloud", project_dir=tmp_path / "checkout")
    assert line.startswith("workflow sdxl-txt2img differs from the one PROD runs"), line


def test_parameters_that_only_changed_order_are_named(tmp_path: Path) -> None:
    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    image = _released_locally(home, context)
    _edit(context, "sdxl-txt2img", lambda body: body["parameters"].reverse())
    [line] = builds.reused_workflow_versions(context, home, "local")
    assert line.startswith(f"workflow sdxl-txt2img differs from the one PROD runs ({image}) in its parameters "
                           "(their order), under the same version"), line
