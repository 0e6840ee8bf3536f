"""A golden case whose workflow the stack's image does not serve (an image from before the workflow was added): the
case fails on its refused create, named as such (no job was created, so no "completed" check), with what to do: a
build of this checkout serves the workflow. A case naming a workflow the checkout has no definition of is told so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from stackfiles import stacks_file
from stuck_support import own_home

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.release.cases import REPO_ROOT

_CASES = REPO_ROOT / "scripts" / "golden-tests" / "cases"


def _golden(home: Path, tmp_path: Path, cases: Path, case: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["golden", "staging", "--home", str(home), "--cases-dir", str(cases),
                 "--references-dir", str(tmp_path / "refs"), "--reports-dir", str(tmp_path / "reports"),
                 "--case", case])
    said = capsys.readouterr()
    return code, said.out + said.err


def test_a_case_for_a_workflow_added_after_the_served_image_says_a_build_of_this_checkout_serves_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "worker"   # yesterday's image: before flux-schnell-lora was added
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "workflows" / "flux-schnell-lora.json").unlink()
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(_CASES / "flux-fox.yaml", cases / "flux-fox.yaml")   # a case of today's checkout, for that workflow
    (cases / "flux-typo.yaml").write_text((_CASES / "flux-fox.yaml").read_text()
                                          .replace("workflow: flux-schnell-lora", "workflow: flux-schnel-lora")
                                          .replace("id: flux-fox", "id: flux-typo"))
    with own_home(tmp_path) as home:
        platform = LocalPlatform(home, stacks_file(home))
        StackDir(home, "staging").pin(image_store.build_local_image(source, home), reason="test")
        platform.up("staging", timeout_s=90)
        code, text = _golden(home, tmp_path, cases, "flux-fox", capsys)
        typo_code, typo = _golden(home, tmp_path, cases, "flux-typo", capsys)
    assert code != 0
    assert "Error:" not in text, text   # no exception's class name
    failure = next(line for line in text.splitlines() if line.strip().startswith("failure: flux-fox:"))
    assert failure.strip().startswith("failure: flux-fox: created: queue/create answered 400: unknown_workflow"), text
    assert "from before workflow flux-schnell-lora" in failure and "`goldgate build`" in failure, failure
    assert "no job was created" in failure, failure
    assert typo_code != 0
    assert "no build of this checkout serves flux-schnel-lora either" in typo, typo
    assert "from before workflow" not in typo, typo
