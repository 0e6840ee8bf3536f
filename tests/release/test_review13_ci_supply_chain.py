"""What the CI workflows trust and hand out: actions pinned by commit, the Pulumi CLI the SDK expects, the job's
GitHub token only in the steps that talk to origin, the ledger key only on main's code.

Before: every `uses:` named a movable tag, `pulumi/actions` installed whatever CLI was newest, actions/checkout left
the job's token (contents: write) in .git/config for every later step (pip's package builds, Pulumi's plugins, the
golden run), and the build and staging jobs got the ledger key on any ref a dispatch named. The token test serves
`origin` over smart HTTP on 127.0.0.1 (git http-backend) behind the Basic auth GitHub takes from a job token."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ci_policy import require
from test_ci_workflows import REPO, WORKFLOW_NAMES, _bash, _env, _steps, _stub_bin, _workflow

# Every `uses:` names a full commit, and says which release that commit is. None is left on a tag: each SHA below
# was checked against several independent public workflows naming the same release.
_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
PINS = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "actions/setup-node": ("49933ea5288caeca8642d1e84afbd3f7d6820020", "v4.4.0"),
    "actions/upload-artifact": ("ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"),
    "actions/download-artifact": ("d3f86a106a0bac45b974a628896c90dbdf5c8093", "v4.3.0"),
    "docker/login-action": ("74a5d142397b4f367a81961eba4e8cd7edddf772", "v3.4.0"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
}
UNVERIFIED: set[str] = set()   # actions left on a tag because no commit could be established for it (none)
TOKEN = "${{ github.token }}"
# A step talks to origin when its script does (origin_git) or runs one of the workflow's scripts that does, or when
# goldgate runs the ledger save script for it (GOLDGATE_LEDGER_SAVE).
_ORIGIN_SCRIPTS = ("$LEDGER_RESTORE", "$LEDGER_SAVE", "$RELEASE_LOCK", "$RELEASE_UNLOCK", "$PROD_STACK_IS_MAINS")


# Every workflow, the test suite's (test.yml) too: its actions run on every pull request.
ALL_WORKFLOWS = sorted(path.name for path in (REPO / ".github" / "workflows").glob("*.yml"))


@pytest.mark.parametrize("name", ALL_WORKFLOWS)
def test_every_action_is_pinned_to_a_commit_with_its_release_named(name: str) -> None:
    text = (REPO / ".github" / "workflows" / name).read_text(encoding="utf-8")
    used = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", text, re.MULTILINE)
    assert used, f"{name}: no `uses:` found"
    for ref, rest in used:
        if ref.startswith("./"):
            # A workflow of this repository at this run's commit (release.yml's `test` job): no third party's code,
            # and checked here itself, as one of ALL_WORKFLOWS.
            assert re.fullmatch(r"\./\.github/workflows/[\w.-]+\.yml", ref) and ref[2:].split("/")[-1] in ALL_WORKFLOWS, (
                name, ref)
            continue
        action = ref.split("@", 1)[0]
        if action in UNVERIFIED:
            continue
        assert _PINNED.match(ref), f"{name}: {ref} is not pinned to a 40-hex commit"
        assert action in PINS, f"{name}: {action} is not among the reviewed pins"
        sha, version = PINS[action]
        assert ref == f"{action}@{sha}", f"{name}: {ref}, reviewed {action}@{sha}"
        assert re.match(rf"\s*#\s*{re.escape(version)}\b", rest), f"{name}: {ref} does not say it is {version}"


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_pulumi_cli_installed_is_the_one_the_pinned_sdk_expects(name: str) -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    [sdk] = [d.split("==", 1)[1] for d in deps if d.startswith("pulumi==")]
    installs = [step for _, _, step in _steps(_workflow(name)) if str(step.get("uses", "")).startswith("pulumi/actions@")]
    assert installs, f"{name}: no pulumi/actions step"
    for step in installs:
        assert str((step.get("with") or {}).get("pulumi-version")) == sdk, (name, step)


@pytest.mark.parametrize("name", ALL_WORKFLOWS)
def test_no_checkout_leaves_the_job_token_in_git_config(name: str) -> None:
    checkouts = [(job, step) for job, _, step in _steps(_workflow(name))
                 if str(step.get("uses", "")).startswith("actions/checkout@")]
    assert checkouts, name
    for job, step in checkouts:
        assert (step.get("with") or {}).get("persist-credentials") is False, f"{name}: job {job}: {step}"


def _talks_to_origin(workflow: dict, step: dict) -> bool:
    run = step.get("run") or ""
    return ("origin_git " in run or any(f'"{script}"' in run for script in _ORIGIN_SCRIPTS)
            or "GOLDGATE_LEDGER_SAVE" in (step.get("env") or {}))


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_job_token_reaches_only_the_steps_that_talk_to_origin(name: str) -> None:
    workflow = _workflow(name)
    # Not in the workflow's or a job's env: every step would see it, the pip install and Pulumi's installer included.
    assert TOKEN not in str(workflow.get("env")), name
    assert all(TOKEN not in str(job.get("env")) for job in workflow["jobs"].values()), name
    # Each script that talks to origin does so through origin_git: a bare `git push` would find no credentials.
    for key, script in workflow["env"].items():
        if f"${key}" in _ORIGIN_SCRIPTS:
            commands = [line.strip() for line in script.splitlines() if not line.strip().startswith(("echo", '"'))]
            bare = [c for c in commands if re.search(r"(?<![\w-])git (-C \"\$dir\" )?(ls-remote|fetch|push) ", c)]
            assert not bare, (key, bare)
    talking = 0
    for job_name, _, step in _steps(workflow):
        env = step.get("env") or {}
        where = f"{name}: job {job_name}: {step.get('name') or step.get('run') or step.get('uses')}"
        if "GOLDGATE_LEDGER_SAVE" in env:
            # goldgate runs Pulumi and the golden run: it hands the token to the save script alone (test_review13_ci2).
            talking += 1
            assert env.get("GOLDGATE_LEDGER_SAVE_TOKEN") == TOKEN and "GH_TOKEN" not in env, where
        elif _talks_to_origin(workflow, step):
            talking += 1
            assert env.get("GH_TOKEN") == TOKEN, where
        else:
            assert TOKEN not in str(env) and TOKEN not in str(step.get("with")), where
    assert talking >= 4, name   # restore, lock, save and unlock at least: a rewrite that hides them fails here


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_job_given_the_ledger_key_runs_only_from_main(name: str) -> None:
    # The gate trusts what the key signed: a branch's code holding it could sign a golden run that never happened.
    for job_name, job in _workflow(name)["jobs"].items():
        if "secrets.GOLDGATE_LEDGER_KEY" in str(job):
            condition = str(job.get("if", ""))
            assert re.search(r"github\.ref\s*==\s*'refs/heads/main'", condition), f"{name}: job {job_name}: {condition!r}"


# --- the token, end to end -----------------------------------------------------------------------------------------

JOB_TOKEN = "ghs_jobtoken0123456789"
CREDENTIALS = base64.b64encode(f"x-access-token:{JOB_TOKEN}".encode()).decode()


def _is_the_job_token(authorization: str) -> bool:
    scheme, _, credentials = authorization.partition(" ")
    return scheme.lower() == "basic" and credentials.strip() == CREDENTIALS   # the scheme's case is free (RFC 7235)


@dataclass
class Origin:
    url: str            # what GITHUB_SERVER_URL is for the steps
    repo: str           # origin's clone URL
    bare: Path
    seen: list[str] = field(default_factory=list)   # the Authorization header of each request


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = b""
        while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
            body += handler.rfile.read(size)
            handler.rfile.readline()
        handler.rfile.readline()
        return body
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[Origin]:
    """A bare repository served as GitHub serves one to a job: git's smart HTTP, Basic auth with the job token."""
    require(shutil.which("git") is not None and subprocess.run(
        ["git", "http-backend"], capture_output=True, env={"PATH": os.environ["PATH"]}, check=False,
        timeout=60).returncode in (0, 1, 128), "git http-backend")
    root = tmp_path / "served"
    bare = root / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True, timeout=120)
    seed = tmp_path / "seed"
    git_env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True, env=git_env, timeout=120)
    (seed / "README.md").write_text("goldgate\n")
    subprocess.run(["git", "-C", str(seed), "add", "README.md"], check=True, env=git_env, timeout=120)
    subprocess.run(["git", "-C", str(seed), "commit", "-qm", "seed"], check=True, env=git_env, timeout=120)
    subprocess.run(["git", "-C", str(seed), "push", "-q", str(bare), "main"], check=True, env=git_env, timeout=120)
    seen: list[str] = []

    class GitOverHttp(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = _read_body(self)
            auth = self.headers.get("Authorization", "")
            seen.append(auth)
            if not _is_the_job_token(auth):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="origin"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1",
                   "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                   "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                   "REMOTE_USER": "x-access-token", "REMOTE_ADDR": "127.0.0.1", "GIT_CONFIG_NOSYSTEM": "1"}
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60,
                                 check=False).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            headers = [line.split(b":", 1) for line in head.split(b"\r\n") if b":" in line]
            status = next((int(v.split()[0]) for k, v in headers if k.lower() == b"status"), 200)
            self.send_response(status)
            for key, value in headers:
                if key.lower() != b"status":
                    self.send_header(key.decode(), value.decode().strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), GitOverHttp)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield Origin(url=url, repo=f"{url}/origin.git", bare=bare, seen=seen)
    finally:
        server.shutdown()
        server.server_close()


def _scripts() -> dict[str, str]:
    return _workflow("release.yml")["env"]


def _checkout(tmp_path: Path, origin: Origin, name: str) -> Path:
    """What actions/checkout leaves with persist-credentials: false: a clone whose config holds no credentials."""
    work = tmp_path / name
    proc = subprocess.run(["git", "-c", f"http.{origin.url}/.extraheader=AUTHORIZATION: basic "
                           + CREDENTIALS, "clone", "-q", "--depth=1", origin.repo, str(work)],
                          check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"})
    assert proc.returncode == 0, proc.stderr
    origin.seen.clear()
    return work


def _step_env(tmp_path: Path, work: Path, origin: Origin, **extra: str) -> dict[str, str]:
    bin_dir = _stub_bin(tmp_path, goldgate="exit 0\n")   # `goldgate history` checks the chain, not the point here
    (work / "github_env").touch()
    return _env(tmp_path, bin_dir, GOLDGATE_HOME=str(work / ".goldgate"), GITHUB_SERVER_URL=origin.url,
                GITHUB_ENV=str(work / "github_env"), GITHUB_WORKFLOW="release", GITHUB_RUN_ID="77",
                GITHUB_RUN_ATTEMPT="1", GITHUB_JOB="promote", GITHUB_REPOSITORY="acme/goldgate",
                RELEASE_LOCK_WAIT_S="0", LEDGER_NOTE="test", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid", **extra)


def test_the_ledger_steps_reach_an_origin_that_wants_the_job_token_and_leave_it_nowhere(tmp_path: Path,
                                                                                          origin: Origin) -> None:
    scripts = _scripts()
    work = _checkout(tmp_path, origin, "job1")
    env = _step_env(tmp_path, work, origin, GH_TOKEN=JOB_TOKEN)
    assert (proc := _bash(scripts["RELEASE_LOCK"], work, env)).returncode == 0, proc.stdout + proc.stderr
    taken = dict(line.split("=", 1) for line in (work / "github_env").read_text().splitlines())
    (work / ".goldgate").mkdir(exist_ok=True)
    (work / ".goldgate" / "ledger.jsonl").write_text('{"seq": 1}\n')
    assert (proc := _bash(scripts["LEDGER_SAVE"], work, env)).returncode == 0, proc.stdout + proc.stderr
    assert (proc := _bash(scripts["RELEASE_UNLOCK"], work, env | taken)).returncode == 0, proc.stdout + proc.stderr
    assert origin.seen and all(map(_is_the_job_token, origin.seen))   # every request carried the job token
    shown = subprocess.run(["git", "--git-dir", str(origin.bare), "show", "release-ledger:ledger.jsonl"],
                           capture_output=True, text=True, check=True, timeout=120).stdout
    assert shown == '{"seq": 1}\n'
    branches = subprocess.run(["git", "--git-dir", str(origin.bare), "branch", "--list"], capture_output=True,
                              text=True, check=True, timeout=120).stdout
    assert "goldgate-release-lock" not in branches   # taken and released over the same authenticated origin
    # Nothing a later step (a pip build, a Pulumi plugin) could read: not the token, not its Basic form.
    for path in (work / ".git").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert JOB_TOKEN.encode() not in data and CREDENTIALS.encode() not in data, path
    nxt = _checkout(tmp_path, origin, "job2")
    proc = _bash(scripts["LEDGER_RESTORE"], nxt, _step_env(tmp_path, nxt, origin, GH_TOKEN=JOB_TOKEN))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (nxt / ".goldgate" / "ledger.jsonl").read_text() == '{"seq": 1}\n'


@pytest.mark.parametrize("script", ["LEDGER_RESTORE", "LEDGER_SAVE", "RELEASE_LOCK", "RELEASE_UNLOCK"])
def test_a_step_not_given_the_token_says_so_before_asking_origin(tmp_path: Path, origin: Origin, script: str) -> None:
    work = _checkout(tmp_path, origin, "job")
    (work / ".goldgate").mkdir()
    (work / ".goldgate" / "ledger.jsonl").write_text('{"seq": 1}\n')
    proc = _bash(_scripts()[script], work, _step_env(tmp_path, work, origin))
    assert proc.returncode != 0
    assert "GH_TOKEN" in proc.stderr, proc.stderr
    assert origin.seen == []


# --- what CI installs into the venv that later holds PROD's secrets ------------------------------------------------

LOCK = REPO / "requirements-ci.txt"
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def _name(project: str) -> str:
    return re.sub(r"[-_.]+", "-", project).lower()   # PEP 503


def _locked() -> dict[str, tuple[str, list[str]]]:
    """{name: (version, its sha256 hashes)} from the lock, every entry as `name==version \\` then its hashes."""
    locked: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if match := _REQUIREMENT.match(line):
            current = _name(match[1])
            locked[current] = (match[2], [])
        elif line.strip().startswith("--hash="):
            assert current is not None, line
            locked[current][1].append(line.strip().removeprefix("--hash=").removesuffix(" \\"))
        elif line.strip() and not line.lstrip().startswith("#"):
            pytest.fail(f"requirements-ci.txt: {line!r} is neither a pinned requirement nor a hash")
    return locked


def test_the_ci_lock_pins_every_package_to_an_exact_version_and_its_hashes() -> None:
    locked = _locked()
    assert len(locked) > 50   # the whole closure (boto3, pulumi, runpod ... and theirs), not the direct pins alone
    for name, (version, hashes) in locked.items():
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), (name, version, hashes)


def test_the_ci_lock_agrees_with_pyproject() -> None:
    # A pin moved in pyproject.toml and not in the lock would install one version in CI and test another here.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    locked = _locked()
    for requirement in project["project"]["dependencies"]:
        name, version = requirement.split("==", 1)
        name = _name(name.split("[", 1)[0])
        assert locked.get(name, ("missing",))[0] == version, f"{requirement}: the lock has {locked.get(name)}"
    # goldgate is built with the lock's setuptools in CI (--no-build-isolation), and with the same one elsewhere.
    [backend] = project["build-system"]["requires"]
    assert backend == f"setuptools=={locked['setuptools'][0]}", backend


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_ci_installs_only_the_locked_files(name: str) -> None:
    # Before: `pip install -e .` resolved the closure afresh on every run, and built goldgate with whatever
    # setuptools was newest, in the jobs that later hold PROD's secrets.
    installs = [(job, step["run"]) for job, _, step in _steps(_workflow(name)) if "pip install" in (step.get("run") or "")]
    assert installs, name
    for job, run in installs:
        commands = [c.strip() for c in run.split("&&") if "pip install" in c]
        assert len(commands) == 2, (job, run)
        locked, project = commands
        assert locked.endswith("pip install --require-hashes -r requirements-ci.txt"), (job, locked)
        assert project.endswith("pip install --no-deps --no-build-isolation -e ."), (job, project)


# --- one origin_git per workflow -------------------------------------------------------------------------------------
# Before: the helper that hands GH_TOKEN to git was written out in every script and in both pin steps (six copies a
# workflow): a fix to how the token reaches git had to land six times per workflow, and a copy left behind kept the
# old way. Now ORIGIN_GIT, in the workflow's env, defines it, and each script that talks to origin evals it.

_DEFINES = re.compile(r"^\s*origin_git\s*\(\)", re.MULTILINE)


def _pin_steps() -> list[tuple[str, dict]]:
    return [(name, step) for name in WORKFLOW_NAMES for _, _, step in _steps(_workflow(name))
            if "origin HEAD:main" in (step.get("run") or "")]


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_each_workflow_defines_origin_git_once(name: str) -> None:
    text = (REPO / ".github" / "workflows" / name).read_text(encoding="utf-8")
    assert len(_DEFINES.findall(text)) == 1, f"{name}: origin_git is defined {len(_DEFINES.findall(text))} times"
    workflow = _workflow(name)
    assert _DEFINES.search(workflow["env"]["ORIGIN_GIT"]), name
    # Both write the same ledger branch and lock through the same origin: one definition for the two.
    assert workflow["env"]["ORIGIN_GIT"] == _workflow("release.yml")["env"]["ORIGIN_GIT"], name
    # Every script that calls it gets it from there before its first call.
    scripts = [(key, value) for key, value in workflow["env"].items() if key != "ORIGIN_GIT"]
    scripts += [(str(step.get("name")), step.get("run") or "") for _, _, step in _steps(workflow)]
    calling = [(where, script) for where, script in scripts if "origin_git " in script]
    assert len(calling) >= 6, (name, [where for where, _ in calling])   # five env scripts and the pin step
    for where, script in calling:
        evals, first_call = script.find('eval "${ORIGIN_GIT'), script.find("origin_git ")
        assert 0 <= evals < first_call, f"{name}: {where} calls origin_git without evaluating ORIGIN_GIT first"


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_pin_step_reaches_origin_with_the_job_token_and_leaves_it_nowhere(tmp_path: Path, origin: Origin,
                                                                               name: str) -> None:
    [step] = [step for where, step in _pin_steps() if where == name]
    work = _checkout(tmp_path, origin, "job")
    # goldgate (a stub) moves no pin: the step fetches main, finds nothing to commit and stops there.
    proc = _bash(step["run"], work, _step_env(tmp_path, work, origin, GH_TOKEN=JOB_TOKEN, RELEASE_ID="r-1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert origin.seen and all(map(_is_the_job_token, origin.seen))
    for path in (work / ".git").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert JOB_TOKEN.encode() not in data and CREDENTIALS.encode() not in data, path


@pytest.mark.parametrize("which", ["PROD_STACK_IS_MAINS", "release.yml pin step", "rollback.yml pin step"])
def test_the_other_steps_not_given_the_token_say_so_before_asking_origin(tmp_path: Path, origin: Origin,
                                                                          which: str) -> None:
    pins = {f"{name} pin step": step["run"] for name, step in _pin_steps()}
    script = pins.get(which) or _scripts()[which]
    work = _checkout(tmp_path, origin, "job")
    proc = _bash(script, work, _step_env(tmp_path, work, origin, RELEASE_ID="r-1"))
    assert proc.returncode != 0
    assert "GH_TOKEN" in proc.stderr, proc.stderr
    assert origin.seen == []


@pytest.mark.parametrize("which", ["LEDGER_SAVE", "release.yml pin step"])
def test_a_step_without_origin_git_says_so_before_asking_origin(tmp_path: Path, origin: Origin, which: str) -> None:
    # A workflow whose env lost ORIGIN_GIT: the step names it, rather than dying on "origin_git: command not found"
    # (the pin step runs without `set -u`, where an empty eval would go on to that).
    pins = {f"{name} pin step": step["run"] for name, step in _pin_steps()}
    script = pins.get(which) or _scripts()[which]
    work = _checkout(tmp_path, origin, "job")
    (work / ".goldgate").mkdir()
    (work / ".goldgate" / "ledger.jsonl").write_text('{"seq": 1}\n')
    env = _step_env(tmp_path, work, origin, GH_TOKEN=JOB_TOKEN, RELEASE_ID="r-1")
    del env["ORIGIN_GIT"]
    proc = _bash(script, work, env)
    assert proc.returncode != 0
    assert "ORIGIN_GIT" in proc.stderr and "command not found" not in proc.stderr, proc.stderr
    assert origin.seen == []
