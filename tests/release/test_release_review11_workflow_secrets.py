"""Which steps of the CI workflows see which secrets. A secret in a job's (or the workflow's) `env:` reaches every step
of the job: the checkout, setup-python, the pip install of third-party packages and the Pulumi installer. Each secret
belongs to the goldgate steps that use it, and the ledger key to every step that records what the gate or a rollback
trusts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
_SECRET = re.compile(r"\$\{\{\s*secrets\.([A-Za-z0-9_]+)")
# No CLOUDFLARE_API_TOKEN: the Pulumi program's Cloudflare provider and D1 migrations take goldgate:cloudflareApiToken
# from the stack's config (infra/program.py), and nothing else deploy, golden, promote or rollback run calls
# Cloudflare's API (the gate reads STAGING's error rate from the service's /api/metrics).
CLOUD = {"PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "RUNPOD_API_KEY"}
KEY = "GOLDGATE_LEDGER_KEY"
# What each goldgate step needs to do its work: (workflow, job, the command its script starts with).
NEEDS = {
    ("release.yml", "build", "goldgate build"): {KEY},
    ("release.yml", "staging", "goldgate deploy"): CLOUD | {KEY},
    ("release.yml", "staging", "goldgate golden"): {"PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE",
                                                    "GOLDGATE_API_TOKEN_STAGING", KEY},
    ("release.yml", "promote", "goldgate promote"): CLOUD | {"GOLDGATE_API_TOKEN_STAGING", "GOLDGATE_API_TOKEN_PROD",
                                                             KEY},
    ("rollback.yml", "rollback", "goldgate rollback"): CLOUD | {"GOLDGATE_API_TOKEN_PROD", KEY},
    # `goldgate check-prod-file --report`: only ledger entries the key authenticates explain main's PROD pin
    ("release.yml", "promote", 'bash -c "$PROD_STACK_IS_MAINS"'): {KEY},
    # `goldgate pins-onto-main`: only deploys recorded under the key move STAGING's pin on main
    ("release.yml", "promote", "goldgate pins-onto-main"): {KEY},
    ("rollback.yml", "rollback", "goldgate pins-onto-main"): {KEY},
}


def _workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def _secrets(*blocks: object) -> set[str]:
    return {name for block in blocks for name in _SECRET.findall(yaml.safe_dump(block or {}))}


def _visible(name: str) -> list[tuple[str, dict, set[str]]]:
    """(job, step, the secrets the step sees): the workflow's env, its job's env, its own env and `with:`."""
    workflow = _workflow(name)
    return [(job_name, step, _secrets(workflow.get("env"), job.get("env"), step.get("env"), step.get("with")))
            for job_name, job in workflow["jobs"].items() for step in job.get("steps", [])]


def _command(step: dict) -> str:
    run = step.get("run") or ""
    lines = [line.strip().removeprefix("moved=$(") for line in run.splitlines()]   # a goldgate call kept in a variable
    return next((line for line in lines if line.startswith(("goldgate ", "bash -c "))), "")


@pytest.mark.parametrize("name", ["release.yml", "rollback.yml"])
def test_only_the_steps_that_use_a_secret_see_it(name: str) -> None:
    # Before: the staging, promote and rollback jobs set every secret in the job's env, so `actions/checkout`,
    # `actions/setup-python`, `pip install -e .` (and every package it pulls in) and `pulumi/actions` saw PROD's
    # credentials.
    for job, step, seen in _visible(name):
        need = next((needs for (wf, jb, command), needs in NEEDS.items()
                     if (wf, jb) == (name, job) and _command(step).startswith(command)), None)
        if need is not None:
            assert seen == need, (job, _command(step), sorted(seen ^ need))
        elif str(step.get("uses", "")).startswith("docker/login-action@"):
            assert seen == {"IMAGE_REGISTRY_PASSWORD"}, (job, step.get("uses"), seen)   # the registry login
        else:
            assert not seen, (job, step.get("name") or step.get("uses") or step.get("run"), sorted(seen))


def test_every_step_named_above_exists() -> None:
    # A renamed command would leave its step out of the check above, and it would pass on nothing.
    found = {(name, job, command) for name in ("release.yml", "rollback.yml") for job, step, _ in _visible(name)
             for (wf, jb, command) in NEEDS if (wf, jb) == (name, job) and _command(step).startswith(command)}
    assert found == set(NEEDS)
