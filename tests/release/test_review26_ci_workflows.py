"""The CI workflows after review 26: a test suite a release waits for, timeouts, the evidence kept, the registry
variables checked first, the job token kept from actions that need none, and a ledger save refused with what to do.

Before: only release.yml and rollback.yml existed, with no pull_request trigger, so a push to main built and released
a commit no test had run on; no job had a `timeout-minutes` (GitHub's default is 360), so a hung `pulumi up` held
the release lock for hours; promotion.json and rollback.json, which the RUNBOOK says keep the evidence, were never
uploaded; with IMAGE_REGISTRY unset the first error was docker login's, then "'/' is not an image repository name";
setup-python and pulumi/actions took the job's token through their default inputs though CLOUD.md said only the steps
that talk to origin get it; and a build's or staging job's ledger save refused after a rollback's with no word of
what to do. The scripts are run as in test_ci_workflows (bash, a bare `origin`, stand-ins)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_ci_workflows import (  # noqa: F401  (fixtures)
    REPO,
    LedgerRig,
    _bash,
    _env,
    _steps,
    _stub_bin,
    _workflow,
    ledger_scripts,
    rig,
    seeded_origin,
)

WORKFLOWS = REPO / ".github" / "workflows"
ALL = sorted(path.name for path in WORKFLOWS.glob("*.yml"))
TOKEN = "${{ github.token }}"
_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def _test_workflow() -> dict:
    return _workflow("test.yml")


def _on(workflow: dict) -> dict:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    on = workflow.get("on", workflow.get(True))
    return on if isinstance(on, dict) else {event: None for event in ([on] if isinstance(on, str) else on)}


# --- the test suite, and the release waiting for it -------------------------------------------------------------------

def test_a_workflow_runs_ci_run_on_every_pull_request_and_push_read_only_and_without_secrets() -> None:
    workflow = _test_workflow()
    on = _on(workflow)
    assert {"pull_request", "push", "workflow_call"} <= set(on), on
    # Every branch that holds code: only the ledger and lock branches, which hold no .ci/run, are left out.
    push = on["push"] or {}
    assert "branches" not in push and set(push.get("branches-ignore", [])) <= {"release-ledger",
                                                                              "goldgate-release-lock"}, push
    assert workflow["permissions"] == {"contents": "read"}
    text = (WORKFLOWS / "test.yml").read_text(encoding="utf-8")
    assert "secrets." not in text and TOKEN not in text
    [(job_name, job)] = workflow["jobs"].items()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any(re.search(r"(^|\s)(bash )?\.ci/run\s*$", run, re.MULTILINE) for run in runs), runs
    # .ci/run installs with apt and starts dockerd: root, here the container's user (no --user), privileged for dockerd.
    container = job.get("container") or {}
    assert container.get("image") and "--user" not in str(container.get("options", ""))
    assert "--privileged" in str(container.get("options", ""))
    assert 0 < job["timeout-minutes"] <= 20, job_name


def test_the_checkout_the_tests_run_in_belongs_to_the_user_that_runs_them() -> None:
    # The runner's user owns the checkout, the container's root runs the tests: git refuses to read a repository
    # another user owns (safe.directory), and the build's identity reads its commit.
    steps = next(iter(_test_workflow()["jobs"].values()))["steps"]
    checkout = next(i for i, step in enumerate(steps) if str(step.get("uses", "")).startswith("actions/checkout@"))
    ci_run = next(i for i, step in enumerate(steps) if ".ci/run" in str(step.get("run", "")))
    assert any("chown -R" in str(step.get("run", "")) for step in steps[checkout + 1:ci_run])


def test_the_build_waits_for_the_test_suite_on_the_same_run() -> None:
    jobs = _workflow("release.yml")["jobs"]
    test = jobs["test"]
    # A job of the same run: the same commit, under the workflow's concurrency group, before the lock is ever taken.
    assert test["uses"] == "./.github/workflows/test.yml"
    assert "secrets" not in test and test.get("permissions") == {"contents": "read"}
    needs = {name: {job.get("needs")} if isinstance(job.get("needs"), str) else set(job.get("needs") or ())
             for name, job in jobs.items()}

    def upstream(name: str) -> set[str]:
        return needs[name] | {u for n in needs[name] for u in upstream(n)}

    assert "test" in needs["build"]
    assert all("test" in upstream(name) for name in jobs if name != "test")
    # Its `if` keeps GitHub's implicit success(): a failed test job skips the build.
    assert not re.search(r"always\(\)|failure\(\)|cancelled\(\)", str(jobs["build"].get("if", "")))


# --- timeouts ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_every_job_ends_long_before_githubs_six_hours_and_its_steps_time_out_first(name: str) -> None:
    for job_name, job in _workflow(name)["jobs"].items():
        if "uses" in job:   # a reusable workflow's call: its own jobs carry their timeouts (checked there)
            assert job["uses"].removeprefix("./.github/workflows/") in ALL
            continue
        limit = job.get("timeout-minutes")
        assert isinstance(limit, int) and 0 < limit <= 240, (name, job_name, limit)
        # Step timeouts add up to less than the job's: a step that runs out fails alone, and the job's `if: always()`
        # steps (ledger save, lock release) still have their time.
        stepped = sum(step.get("timeout-minutes", 0) for step in job["steps"])
        assert stepped < limit, (name, job_name, stepped, limit)


def _step(name: str, job: str, pattern: str) -> dict:
    [step] = [s for s in _workflow(name)["jobs"][job]["steps"] if re.search(pattern, s.get("run") or "")]
    return step


@pytest.mark.parametrize(("name", "job", "command"), [("release.yml", "build", r"goldgate build\b"),
                                                      ("release.yml", "staging", r"goldgate deploy\b"),
                                                      ("release.yml", "staging", r"goldgate golden\b"),
                                                      ("release.yml", "promote", r"goldgate promote\b"),
                                                      ("rollback.yml", "rollback", r"goldgate rollback\b")])
def test_a_hung_goldgate_step_is_stopped_before_its_job_and_the_lock_outlives_its_hour_of_waiting(
        name: str, job: str, command: str) -> None:
    step = _step(name, job, command)
    assert 0 < step.get("timeout-minutes", 0) <= 120, step.get("name")
    lock = _step(name, job, r"\$RELEASE_LOCK\b")
    wait_s = int(re.search(r"RELEASE_LOCK_WAIT_S:-(\d+)", _workflow(name)["env"]["RELEASE_LOCK"]).group(1))
    # The lock step gives up by itself after RELEASE_LOCK_WAIT_S, naming the holder: its timeout must not cut that short.
    assert lock.get("timeout-minutes", 0) * 60 > wait_s
    # It outwaits the longest holder, release.yml's promote job: its promotion may run its step's whole timeout, then
    # the pins and the ledger save (minutes). Before, an hour's wait failed a rollback dispatched during a promotion.
    promotion = _step("release.yml", "promote", r"goldgate promote\b")["timeout-minutes"]
    assert wait_s >= (promotion + 5) * 60, (wait_s, promotion)
    if job in ("promote", "rollback"):
        # Its rollouts (GOLDGATE_ROLLOUT_TIMEOUT_S, 30 minutes each) fit: promote may deploy twice (its rollback).
        assert step["timeout-minutes"] >= (70 if job == "promote" else 40)


# --- the evidence -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "job", "command"), [("release.yml", "promote", r"goldgate promote\b"),
                                                      ("rollback.yml", "rollback", r"goldgate rollback\b")])
def test_the_json_a_prod_job_tees_is_uploaded_with_the_smoke_report(name: str, job: str, command: str) -> None:
    teed = re.search(r"\|\s*tee\s+(\S+)\s*$", _step(name, job, command)["run"], re.MULTILINE).group(1)
    [upload] = [s for s in _workflow(name)["jobs"][job]["steps"]
                if str(s.get("uses", "")).startswith("actions/upload-artifact@")
                and (s.get("with") or {}).get("name") == "smoke-report"]
    paths = [line.strip() for line in str(upload["with"]["path"]).splitlines() if line.strip()]
    assert teed in paths and "scripts/golden-tests/reports/" in paths, paths
    assert upload.get("if") == "always()"


# --- the registry variables -------------------------------------------------------------------------------------------

def _guard_index(steps: list[dict]) -> int:
    return next(i for i, s in enumerate(steps) if "IMAGE_REGISTRY" in str(s.get("run", ""))
                and "goldgate" not in str(s.get("run", "")))


def _run_guard(tmp_path: Path, variables: dict[str, str]) -> tuple[int, str]:
    workflow = _workflow("release.yml")
    step = workflow["jobs"]["build"]["steps"][_guard_index(workflow["jobs"]["build"]["steps"])]
    # GitHub evaluates an unset variable to "".
    context = {f"vars.{key}": value for key, value in variables.items()}
    env = {}
    for block in (workflow["env"], step.get("env") or {}):
        env.update({key: _EXPRESSION.sub(lambda m: context.get(m.group(1), ""), str(value))
                    for key, value in block.items() if key in ("IMAGE_REGISTRY", "IMAGE_REPO", "IMAGE_REPOSITORY")})
    proc = _bash(step["run"], tmp_path, _env(tmp_path, _stub_bin(tmp_path), **env))
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("unset", [("IMAGE_REGISTRY",), ("IMAGE_REPOSITORY",), ("IMAGE_REGISTRY", "IMAGE_REPOSITORY")],
                         ids="+".join)
def test_the_build_job_stops_first_on_unset_registry_variables_naming_them(tmp_path: Path,
                                                                           unset: tuple[str, ...]) -> None:
    variables = {key: value for key, value in (("IMAGE_REGISTRY", "registry.example"), ("IMAGE_REPOSITORY", "acme/worker"))
                 if key not in unset}
    code, said = _run_guard(tmp_path, variables)
    assert code != 0
    assert "set the repository variables IMAGE_REGISTRY and IMAGE_REPOSITORY" in said and all(u in said for u in unset)
    steps = _workflow("release.yml")["jobs"]["build"]["steps"]
    login = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("docker/login-action@"))
    assert _guard_index(steps) < login


def test_the_registry_check_passes_with_both_variables_set(tmp_path: Path) -> None:
    assert _run_guard(tmp_path, {"IMAGE_REGISTRY": "registry.example", "IMAGE_REPOSITORY": "acme/worker"}) == (0, "")


# --- the job token and the actions' default inputs --------------------------------------------------------------------

# Each action the workflows use, and the input through which it takes the job's token unless told otherwise (None: it
# has none; upload-artifact and download-artifact reach this run's artifacts with the runner's own credentials, and
# docker/login-action is given its password by name). A new action is added here once its inputs are read.
TOKEN_INPUTS = {"actions/checkout": "token", "actions/setup-python": "token", "actions/setup-node": "token", "pulumi/actions": "github-token",
                "actions/upload-artifact": None, "actions/download-artifact": None, "docker/login-action": None}
# Those whose token default is their work: the checkout fetches this commit from origin (and keeps no token).
TALK_TO_ORIGIN = {"actions/checkout"}


@pytest.mark.parametrize("name", ALL)
def test_no_action_takes_the_job_token_through_a_default_input_it_does_not_need(name: str) -> None:
    for job_name, _job, step in _steps(_workflow(name)):
        if "uses" not in step:
            continue
        action = step["uses"].split("@", 1)[0]
        assert action in TOKEN_INPUTS, f"{name}: {action}: which of its inputs defaults to the job's token?"
        given = step.get("with") or {}
        if TOKEN_INPUTS[action] is None or action in TALK_TO_ORIGIN:
            continue
        assert given.get(TOKEN_INPUTS[action]) == "", (name, job_name, action, given)


def test_cloud_md_says_which_actions_get_an_empty_token() -> None:
    text = re.sub(r"\s+", " ", (REPO / "docs" / "CLOUD.md").read_text(encoding="utf-8"))
    assert "the checkout fetches with it and keeps none" in text
    assert all(action in text for action in ("setup-python", "pulumi/actions")) and "given an empty one" in text


# --- a ledger save refused: what to do --------------------------------------------------------------------------------

def test_a_save_refused_after_another_jobs_save_says_to_re_run_the_job(rig: LedgerRig) -> None:  # noqa: F811
    # The build and staging jobs restore the ledger before they take the lock (held through a build, it would keep a
    # rollback waiting): a rollback's save in between makes theirs refuse, after STAGING was really deployed.
    proc = rig.save_after_another_jobs_save(saved='{"n": "rollback"}\n', refused='{"n": "deploy"}\n{"n": "golden"}\n')
    assert proc.returncode != 0
    said = " ".join((proc.stdout + proc.stderr).split())
    assert "another job (a rollback?) saved the ledger after this job restored it" in said, said
    assert "re-run this job, it restores the ledger again" in said, said
    assert rig.branch_ledger() == '{"n": "rollback"}\n'

    # And so it does: the re-run restores the rollback's entry and records its own after it.
    rerun = rig.job()
    assert rig.run("restore", rerun).returncode == 0
    ledger = rerun / ".goldgate" / "ledger.jsonl"
    ledger.write_text(ledger.read_text() + '{"n": "deploy"}\n')
    assert rig.run("save", rerun).returncode == 0
    assert rig.branch_ledger() == '{"n": "rollback"}\n{"n": "deploy"}\n'


def test_the_runbook_says_what_to_do_when_a_build_or_staging_save_is_refused() -> None:
    text = re.sub(r"\s+", " ", (REPO / "docs" / "RUNBOOK.md").read_text(encoding="utf-8"))
    assert "another job (a rollback?) saved the ledger after this job restored it" in text
    assert "Re-run the failed job" in text

