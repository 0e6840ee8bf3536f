"""`goldgate build` says when a workflow's graph was edited under the `<id>@<version>` PROD's image ships (the check:
goldgate/release/build.py reused_workflow_versions; tests/test_review28_wffix_workflow_version_reuse.py)."""

from __future__ import annotations

from pathlib import Path

from test_review28_wffix_workflow_version_reuse import _context, _denoise, _edit, _released_locally

from goldgate.cli import main
from goldgate.release import build as builds


def test_goldgate_build_warns_of_a_graph_edited_under_the_version_prod_runs(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(builds, "git_commit", lambda *_: "0" * 40)   # any checkout, a git clone or not
    home, context = tmp_path / "home", _context(tmp_path / "checkout")
    image = _released_locally(home, context)
    _edit(context, "sdxl-txt2img", _denoise)
    capsys.readouterr()
    assert main(["build", "--home", str(home), "--context", str(context), "--workflow-version", "2026.11.0"]) == 0
    err = capsys.readouterr().err
    assert (f"warning: workflow sdxl-txt2img differs from the one PROD runs ({image}) in its graph (node 3), under "
            "the same version sdxl-txt2img@1.0.0") in err, err
