"""A team adding a workflow file ("Add a workflow", images/worker/README.md) is not failed by the suite for it:
tests/service/test_service_units.py::test_shipped_workflows_load compared the shipped ids with a list written in the
test, so every new `workflows/<id>.json` failed CI, and with it release.yml's build of the image that ships it. It
still fails for a shipped workflow that does not load, which is what it is for.

The test is run here over a copy of the checkout's workflows directory, as a team's checkout would hold it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from service.workflows import WorkflowError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "images" / "worker" / "workflows"


@pytest.fixture
def shipped_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Callable[[], None], Path]:
    """test_shipped_workflows_load, reading the workflows of a checkout at tmp_path (its ROOT), and that checkout's
    workflows directory, a copy of the shipped one."""
    monkeypatch.syspath_prepend(str(REPO / "tests" / "service"))
    import service_testkit

    spec = importlib.util.spec_from_file_location("review28_wffix_service_units",
                                                  REPO / "tests" / "service" / "test_service_units.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(service_testkit, "ROOT", tmp_path)
    workflows = tmp_path / "images" / "worker" / "workflows"
    shutil.copytree(SHIPPED, workflows)
    return module.test_shipped_workflows_load, workflows


def _added(workflows: Path, new_id: str) -> None:
    """A team's new workflow: a shipped one re-exported under its own id, as step 2 of "Add a workflow" says."""
    body = json.loads((SHIPPED / "sdxl-txt2img.json").read_text(encoding="utf-8"))
    body.update(id=new_id, version=f"{new_id}@1.0.0", description="a team's own SDXL workflow")
    (workflows / f"{new_id}.json").write_text(json.dumps(body, indent=1), encoding="utf-8")


def test_the_shipped_workflows_test_passes_as_shipped_and_with_a_workflow_added(shipped_test) -> None:
    run, workflows = shipped_test
    run()
    _added(workflows, "sdxl-team-portrait")
    run()   # before: AssertionError, [..., 'sdxl-team-portrait', 'sdxl-txt2img'] != ['flux-schnell-lora', ...]


def test_the_shipped_workflows_test_still_fails_for_a_workflow_that_does_not_load(shipped_test) -> None:
    run, workflows = shipped_test
    _added(workflows, "sdxl-team-portrait")
    broken = workflows / "sdxl-team-portrait.json"
    body = json.loads(broken.read_text(encoding="utf-8"))
    body["version"] = "1.0.0"   # not <id>@<version>: the service refuses the file
    broken.write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(WorkflowError, match="sdxl-team-portrait.json: version must look like"):
        run()


def test_the_shipped_workflows_test_fails_when_a_file_serves_another_id(shipped_test) -> None:
    """A file whose name is not its `id` ships a workflow under a name nobody asks for (the build refuses it)."""
    run, workflows = shipped_test
    (workflows / "sdxl-txt2img.json").rename(workflows / "sdxl-team-portrait.json")
    with pytest.raises(AssertionError):
        run()
    shutil.copy(SHIPPED / "sdxl-txt2img.json", workflows / "sdxl-txt2img.json")   # now two files of one id
    with pytest.raises(WorkflowError, match="workflow id sdxl-txt2img is defined twice"):
        run()


def test_the_shipped_workflows_test_fails_when_nothing_is_shipped(shipped_test) -> None:
    run, workflows = shipped_test
    for path in workflows.glob("*.json"):
        path.unlink()
    with pytest.raises(AssertionError, match="no workflow file"):
        run()
