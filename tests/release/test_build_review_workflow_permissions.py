"""The GITHUB_TOKEN each job of the CI workflows gets: no more than that job does with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
WORKFLOW_NAMES = ["release.yml", "rollback.yml", "test.yml"]
# What GitHub's `permissions: write-all` / `read-all` shorthands stand for, as far as these workflows go.
_SCOPES = ("actions", "contents", "packages", "id-token", "pull-requests", "deployments", "statuses", "checks")


def _workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def _granted(permissions: object) -> dict[str, str]:
    """A `permissions:` value as scope -> access. Unset, GitHub gives the repository's default, which may be write
    to everything: treated as write-all."""
    if permissions is None or permissions == "write-all":
        return dict.fromkeys(_SCOPES, "write")
    if permissions == "read-all":
        return dict.fromkeys(_SCOPES, "read")
    assert isinstance(permissions, dict), permissions
    return {scope: str(access) for scope, access in permissions.items() if access != "none"}


def _jobs_permissions(name: str) -> dict[str, dict[str, str]]:
    workflow = _workflow(name)
    # A job's own `permissions:` replaces the workflow's entirely.
    return {job_name: _granted(job["permissions"] if "permissions" in job else workflow.get("permissions"))
            for job_name, job in workflow["jobs"].items()}


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_only_the_build_job_can_publish_an_image(name: str) -> None:
    # The STAGING and PROD jobs run the golden suite, Pulumi, `pip install` of the project and third-party actions
    # with their token. Before, `packages: write` was workflow-wide: any of that code could publish an image to the
    # repository's registry (a tag a person then pulls); only `goldgate build` pushes one.
    publishers = sorted(job for job, granted in _jobs_permissions(name).items() if granted.get("packages") == "write")
    assert publishers == (["build"] if name == "release.yml" else []), publishers


# The jobs that push the ledger branch, the release lock or a pin commit; every other job (the test suite, which runs
# on pull requests and any branch) reads the repository and nothing more.
WRITERS = {"release.yml": {"build", "staging", "promote"}, "rollback.yml": {"rollback"}, "test.yml": set()}


def _writers(name: str) -> set[str]:
    return {job_name for job_name, job in _workflow(name)["jobs"].items()
            if any("$RELEASE_LOCK" in str(step.get("run", "")) for step in job.get("steps", []))}


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_job_keeps_what_its_ledger_save_and_release_lock_need(name: str) -> None:
    # The ledger branch, the release lock and the pin commit are pushes (contents: write); a waiter asks GitHub
    # whether the lock's holder still runs (actions: read). Nothing else is asked for.
    assert _writers(name) == WRITERS[name]
    for job, granted in _jobs_permissions(name).items():
        if job not in WRITERS[name]:
            assert granted == {"contents": "read"}, (job, granted)
            continue
        assert granted.get("contents") == "write" and granted.get("actions") in ("read", "write"), (job, granted)
        assert set(granted) <= {"contents", "actions", "packages"}, (job, granted)
