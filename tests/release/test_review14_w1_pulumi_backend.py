"""The CI workflows and a self-managed Pulumi backend, and what release.yml's header tells the operator to set.

Before: the workflows passed PULUMI_ACCESS_TOKEN and never the repository variable PULUMI_BACKEND_URL, so a stack
kept in an s3:// (or any other self-managed) backend was looked for in Pulumi Cloud by every step that runs Pulumi.
Each such step's script is taken out of the YAML and run with bash and a stub goldgate, its environment composed as
GitHub composes it (the workflow's env, then the job's, then the step's, each `${{ }}` evaluated)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
BACKEND = "s3://acme-pulumi-state/goldgate"
IMAGE = "ghcr.example/acme/worker@sha256:" + "b" * 64
NOT_SET = "<not set>"


def _workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def _evaluate(value: str, context: dict[str, str]) -> str:
    """A `${{ name }}` as GitHub evaluates it: a name the run has no value for (an unset variable) is empty."""
    return _EXPRESSION.sub(lambda m: context.get(m.group(1), ""), value)


def _step_env(workflow: dict, job: dict, step: dict, context: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for block in (workflow.get("env"), job.get("env"), step.get("env")):
        seen = {**context, **{f"env.{k}": v for k, v in env.items()}}
        env.update({key: _evaluate(str(value), seen) for key, value in (block or {}).items()})
    return env


def _pulumi_steps() -> list[tuple[str, str, dict, dict, dict]]:
    """(workflow, job name, workflow, job, step) of every step that runs Pulumi: those given its access token."""
    found = []
    for name in ("release.yml", "rollback.yml"):
        workflow = _workflow(name)
        for job_name, job in workflow["jobs"].items():
            found += [(name, job_name, workflow, job, step) for step in job.get("steps", [])
                      if "PULUMI_ACCESS_TOKEN" in (step.get("env") or {})]
    return found


def _run(tmp_path: Path, workflow: dict, job: dict, step: dict, variables: dict[str, str]) -> str:
    """Run the step with a stub goldgate; returns the PULUMI_BACKEND_URL goldgate (and so Pulumi) was started with."""
    seen = tmp_path / "backend"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "goldgate"
    stub.write_text(f'#!/bin/sh\nprintf %s "${{PULUMI_BACKEND_URL-{NOT_SET}}}" > "{seen}"\necho \'{{"ok": true}}\'\n')
    stub.chmod(0o755)
    context = {"github.workspace": str(tmp_path), "needs.build.outputs.image": IMAGE, "github.run_id": "7",
               "github.token": "<job token>", **{f"vars.{k}": v for k, v in variables.items()}}
    context.update({m: f"<{m}>" for m in re.findall(r"secrets\.\w+", yaml.safe_dump(step))})
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           **_step_env(workflow, job, step, context)}
    # GitHub runs `shell: bash` as `bash --noprofile --norc -eo pipefail {0}`.
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return seen.read_text()


def _command(step: dict) -> str:
    return " ".join(re.search(r"goldgate (\w+)", step["run"]).group(0).split()[:2])


def _params() -> list:
    return [pytest.param(*found, id=f"{found[0]}:{_command(found[-1])}") for found in _pulumi_steps()]


def test_every_goldgate_command_that_runs_pulumi_is_covered() -> None:
    # Without them the test below would pass on nothing.
    assert {(name, _command(step)) for name, _, _, _, step in _pulumi_steps()} == {
        ("release.yml", "goldgate deploy"), ("release.yml", "goldgate golden"), ("release.yml", "goldgate promote"),
        ("rollback.yml", "goldgate rollback")}


@pytest.mark.parametrize(("name", "job_name", "workflow", "job", "step"), _params())
def test_a_self_managed_backend_reaches_every_step_that_runs_pulumi(tmp_path: Path, name, job_name, workflow, job,
                                                                    step) -> None:
    assert _run(tmp_path, workflow, job, step, {"PULUMI_BACKEND_URL": BACKEND}) == BACKEND, (name, job_name)


@pytest.mark.parametrize(("name", "job_name", "workflow", "job", "step"), _params())
def test_without_the_variable_pulumi_gets_no_backend_url(tmp_path: Path, name, job_name, workflow, job,
                                                         step) -> None:
    # GitHub evaluates an unset variable to "": the pulumi CLI takes an empty PULUMI_BACKEND_URL as unset
    # (workspace.GetCurrentCloudURL), so the stacks stay in Pulumi Cloud, with PULUMI_ACCESS_TOKEN.
    assert _run(tmp_path, workflow, job, step, {}) in ("", NOT_SET), (name, job_name)


# -- release.yml's header: which environment holds each secret ---------------------------------------------------

_HEADER_ROW = re.compile(r"^#\s+([A-Z][A-Z0-9_]+)\s+((?:staging|production)(?:, (?:staging|production))*)\s")


def _header() -> str:
    text = (WORKFLOWS / "release.yml").read_text(encoding="utf-8")
    return text[:text.index("\nname:")]


def _read_by_environment() -> dict[str, set[str]]:
    """secret -> the environments whose jobs read it, over both workflows."""
    found: dict[str, set[str]] = {}
    for name in ("release.yml", "rollback.yml"):
        for job in _workflow(name)["jobs"].values():
            for secret in set(re.findall(r"secrets\.([A-Z][A-Z0-9_]*)", yaml.safe_dump(job))) - {"GITHUB_TOKEN"}:
                found.setdefault(secret, set()).add(job["environment"])
    return found


def test_the_header_names_the_environment_of_each_secret_as_the_jobs_read_them() -> None:
    # Before: "Secrets (environment secrets of `staging` and `production`)" over a list without environments: the
    # PROD token put into `staging` too, STAGING's token left out of `production` (where the gate reads it), and
    # CLOUDFLARE_API_TOKEN listed though no step needs it.
    rows = [_HEADER_ROW.match(line) for line in _header().splitlines()]
    listed = {m.group(1): set(m.group(2).split(", ")) for m in rows if m}
    assert listed == _read_by_environment()
    assert listed["GOLDGATE_API_TOKEN_STAGING"] == {"staging", "production"}
