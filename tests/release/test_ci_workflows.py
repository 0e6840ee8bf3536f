"""The CI promotion and rollback workflows fail their step when goldgate fails, even inside a pipe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
# A pipe (not `||`) outside quotes is enough to suspect one: `goldgate promote --json | tee promotion.json`.
_PIPE = re.compile(r"(?<!\|)\|(?!\|)")


def _piped_steps(workflow: dict) -> list[tuple[str, dict, dict]]:
    found = []
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            run = step.get("run")
            if isinstance(run, str) and any(_PIPE.search(line) for line in run.splitlines()):
                found.append((job_name, job, step))
    return found


@pytest.mark.parametrize("name", ["release.yml", "rollback.yml"])
def test_a_failing_command_piped_into_tee_fails_its_step(name: str) -> None:
    # GitHub runs a `run:` without `shell:` as `bash -e {0}`: no pipefail, so the step takes tee's exit
    # status and a refused promotion or a failed rollback shows green. `shell: bash` adds -o pipefail.
    workflow = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    steps = _piped_steps(workflow)
    assert steps, f"{name}: expected the goldgate step that tees its JSON"
    for job_name, job, step in steps:
        shell = (step.get("shell") or job.get("defaults", {}).get("run", {}).get("shell")
                 or workflow.get("defaults", {}).get("run", {}).get("shell"))
        pipefail = shell == "bash" or "pipefail" in step["run"]
        assert pipefail, f"{name}: job {job_name} step {step.get('name')!r} pipes without pipefail"
