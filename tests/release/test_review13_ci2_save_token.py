"""The job's GitHub token (contents: write) reaches the ledger save script and nothing else goldgate starts.

Before: the promote and rollback steps gave the token as GH_TOKEN so that GOLDGATE_LEDGER_SAVE could push the
ledger, and every process goldgate started there (the Pulumi CLI, its provider plugins, the golden run) inherited a
token that can push to main. Now those steps give it as GOLDGATE_LEDGER_SAVE_TOKEN: goldgate takes it out of its
environment before a command runs and hands it, as GH_TOKEN, to the save script alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from release_support import invoke
from test_ci_workflows import WORKFLOW_NAMES, _steps, _workflow
from test_cloud_deployer import A, cloud_staging, emulator, project  # noqa: F401 -- fixtures, used by name

from goldgate.release.ledger import Ledger

SAVE_TOKEN_ENV = "GOLDGATE_LEDGER_SAVE_TOKEN"   # spelled out: the CI workflows set it by name
JOB_TOKEN = "ghs_jobtoken0123456789abcdef"
WORKFLOW_TOKEN = "${{ github.token }}"


def test_pulumi_never_holds_the_save_token_and_the_save_script_gets_it_as_gh_token(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path) -> None:  # noqa: F811
    pulumi_saw, save_saw = tmp_path / "pulumi-env.txt", tmp_path / "save-env.txt"
    # pulumi writes down its whole environment on every run
    cloud_staging(project, tmp_path, monkeypatch, f"{{ env; echo '--- end of a run ---'; }} >> '{pulumi_saw}'")
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.setenv(SAVE_TOKEN_ENV, JOB_TOKEN)
    # As LEDGER_SAVE does, the script refuses to run without GH_TOKEN; here it notes what it got instead of pushing.
    monkeypatch.setenv("GOLDGATE_LEDGER_SAVE", f': "${{GH_TOKEN:?no GH_TOKEN}}"; env > "{save_saw}"')
    home = tmp_path / "home"
    image = A.replace("a" * 64, "c" * 64)
    code, out, err = invoke(capsys, "deploy", "staging", "--target", "cloud", "--image", image, "--home", str(home))
    assert code == 0, err
    runs = pulumi_saw.read_text()
    assert runs.count("--- end of a run ---") >= 2, runs   # the version check and the update at least
    assert JOB_TOKEN not in runs and SAVE_TOKEN_ENV not in runs
    assert "not saved" not in err, err   # the save ran, and found its token
    saved = dict(line.split("=", 1) for line in save_saw.read_text().splitlines() if "=" in line)
    assert saved.get("GH_TOKEN") == JOB_TOKEN and SAVE_TOKEN_ENV not in saved
    [deploy] = Ledger(home).entries()
    assert deploy.kind == "deploy" and deploy.get("image") == image
    for path in home.rglob("*"):   # the ledger and the release log
        if path.is_file():
            assert JOB_TOKEN not in path.read_text(errors="replace"), path
    assert JOB_TOKEN not in out + err
    assert os.environ[SAVE_TOKEN_ENV] == JOB_TOKEN   # put back for whoever runs goldgate in-process next
    assert "GH_TOKEN" not in os.environ


def test_a_failed_save_that_prints_the_token_warns_without_it(capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # git's own errors name what it was given: a save script's last line reaches the job log in the warning.
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.setenv(SAVE_TOKEN_ENV, JOB_TOKEN)
    monkeypatch.setenv("GOLDGATE_LEDGER_SAVE", 'echo "fatal: push refused for token $GH_TOKEN" >&2; exit 128')
    entry = Ledger(tmp_path / "home").append("build", image=A, release_id="r1", trigger="user:t")
    err = capsys.readouterr().err
    assert f"warning: ledger #{entry.seq} is recorded here but not saved (exit 128: fatal: push refused for token ***)" \
        in err, err
    assert JOB_TOKEN not in err


# --- the workflows ----------------------------------------------------------------------------------------------------


def _runs_pulumi(step: dict) -> bool:
    # Every goldgate command that drives Pulumi (deploy, golden, promote, rollback) is given its backend's token.
    return "PULUMI_ACCESS_TOKEN" in (step.get("env") or {}) or str(step.get("uses", "")).startswith("pulumi/")


@pytest.mark.parametrize(("name", "job", "command"), [("release.yml", "promote", "goldgate promote "),
                                                      ("rollback.yml", "rollback", "goldgate rollback ")])
def test_the_prod_steps_give_the_token_to_goldgate_under_the_save_tokens_name(name: str, job: str,
                                                                             command: str) -> None:
    [step] = [s for s in _workflow(name)["jobs"][job]["steps"] if command in (s.get("run") or "")]
    env = step.get("env") or {}
    assert env.get("GOLDGATE_LEDGER_SAVE") == "${{ env.LEDGER_SAVE }}", env
    assert env.get(SAVE_TOKEN_ENV) == WORKFLOW_TOKEN, env
    assert "GH_TOKEN" not in env, env


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_no_step_that_runs_pulumi_gets_gh_token(name: str) -> None:
    pulumi_steps = [(job, step) for job, _, step in _steps(_workflow(name)) if _runs_pulumi(step)]
    assert len(pulumi_steps) >= 2, name   # the CLI's install and a PROD step at least
    for job, step in pulumi_steps:
        env = step.get("env") or {}
        where = f"{name}: job {job}: {step.get('name') or step.get('uses')}"
        assert "GH_TOKEN" not in env, where
        # The job token under any other name would reach Pulumi all the same; the save token is taken by goldgate.
        assert all(WORKFLOW_TOKEN not in str(value) for key, value in env.items() if key != SAVE_TOKEN_ENV), where
        assert WORKFLOW_TOKEN not in str(step.get("with")), where
