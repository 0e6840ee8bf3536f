"""A golden case whose workflow the stack's image does not serve (yesterday's image against today's cases, after an
upgrade added a workflow): its failure is said in goldgate's words, not with an internal exception's class name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from stuck_support import own_home, up_staging

from goldgate.cli import main

_CASES = Path(__file__).resolve().parents[2] / "scripts" / "golden-tests" / "cases"


def test_a_case_for_a_workflow_the_image_does_not_serve_fails_without_a_class_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(_CASES / "flux-fox.yaml", cases / "flux-fox.yaml")
    later = (_CASES / "flux-fox.yaml").read_text().replace("workflow: flux-schnell-lora", "workflow: flux-later")
    (cases / "flux-later.yaml").write_text(later)
    with own_home(tmp_path) as home:
        up_staging(home)
        capsys.readouterr()
        code = main(["golden", "staging", "--home", str(home), "--cases-dir", str(cases),
                     "--references-dir", str(tmp_path / "refs"), "--reports-dir", str(tmp_path / "reports"),
                     "--case", "flux-later"])
        said = capsys.readouterr()
    text = said.out + said.err
    assert code != 0
    assert "flux-later" in text
    assert "GoldgateError" not in text, text
