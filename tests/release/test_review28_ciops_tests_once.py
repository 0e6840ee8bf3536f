"""A push runs the test suite once. Before: a push to main started test.yml (on every push) and release.yml, whose
`test` job calls test.yml again: two full `.ci/run`s of the same commit (twice the runner time, two "test" checks).

Each push below is a real commit pushed to a bare `origin`; which workflows GitHub starts is read from their `on:`
(branches, paths-ignore), and test.yml's job is walked step by step as GitHub would run it: the checkout at the depth
its `fetch-depth` expression gives, its `run:` steps under bash with their `env:` and `if:` expressions evaluated, and
each `.ci/run` step that would run counted. Nothing here runs the suite itself."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ci_policy import require
from test_ci_workflows import _bash, _env, _stub_bin, _workflow

ZERO = "0" * 40


# --- GitHub's expressions, as far as these workflows use them ---------------------------------------------------------

_TOKEN = re.compile(r"\s*(\(|\)|!=|==|&&|\|\||!|'(?:[^']|'')*'|-?\d+|[A-Za-z_][\w.-]*)")


def _evaluate(expression: str, context: dict[str, object]) -> object:
    """`&&` and `||` give an operand (GitHub's rule), `!` a boolean, a missing name null."""
    tokens = []
    rest = expression.strip()
    while rest:
        match = _TOKEN.match(rest)
        assert match, f"cannot read {rest!r} in {expression!r}"
        tokens.append(match.group(1))
        rest = rest[match.end():].lstrip()
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def truthy(value: object) -> bool:
        return value not in (None, False, 0, "")

    def primary() -> object:
        token = take()
        if token == "(":
            value = either()
            assert take() == ")"
            return value
        if token == "!":
            return not truthy(primary())
        if token.startswith("'"):
            return token[1:-1].replace("''", "'")
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        if token in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token]
        return context.get(token)

    def comparison() -> object:
        left = primary()
        while peek() in ("==", "!="):
            op, right = take(), primary()
            same = (str(left).lower() == str(right).lower()) if isinstance(left, str) and isinstance(right, str) \
                else left == right
            left = same if op == "==" else not same
        return left

    def both() -> object:
        left = comparison()
        while peek() == "&&":
            take()
            right = comparison()
            left = right if truthy(left) else left
        return left

    def either() -> object:
        left = both()
        while peek() == "||":
            take()
            right = both()
            left = left if truthy(left) else right
        return left

    value = either()
    assert position == len(tokens), f"left over in {expression!r}: {tokens[position:]}"
    return value


def _substitute(value: object, context: dict[str, object]) -> str:
    def text(result: object) -> str:
        return {True: "true", False: "false", None: ""}.get(result, str(result)) \
            if isinstance(result, bool | type(None)) else str(result)
    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", lambda m: text(_evaluate(m.group(1), context)), str(value))


def _condition(step: dict, context: dict[str, object]) -> bool:
    condition = step.get("if")
    if condition is None:
        return True
    condition = re.sub(r"^\$\{\{\s*(.*?)\s*\}\}$", r"\1", str(condition).strip())
    return _evaluate(condition, context) not in (None, False, 0, "")


# --- which workflows a push starts ------------------------------------------------------------------------------------

def _glob(pattern: str, path: str) -> bool:
    """GitHub's filter patterns: `**` any characters, `*` any but `/`."""
    regex = re.escape(pattern).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace("\0", ".*")
    return re.fullmatch(regex, path) is not None


def _on(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))
    return on if isinstance(on, dict) else {event: None for event in ([on] if isinstance(on, str) else on)}


def _push_starts(workflow: dict, branch: str, changed: list[str]) -> bool:
    push = _on(workflow).get("push", False)
    if push is False:
        return False
    push = push or {}
    if "branches" in push and not any(fnmatch.fnmatchcase(branch, b) for b in push["branches"]):
        return False
    if any(fnmatch.fnmatchcase(branch, b) for b in push.get("branches-ignore", [])):
        return False
    ignored = push.get("paths-ignore")
    return not ignored or not all(any(_glob(p, path) for p in ignored) for path in changed)


# --- a repository and its pushes --------------------------------------------------------------------------------------

class Repo:
    def __init__(self, tmp_path: Path) -> None:
        require(shutil.which("git") is not None, "git")
        self.tmp = tmp_path
        self.bin = _stub_bin(tmp_path)
        self.origin = tmp_path / "origin.git"
        self.work = tmp_path / "dev"
        self.git(tmp_path, "init", "-q", "--bare", "-b", "main", str(self.origin))
        self.git(tmp_path, "init", "-q", "-b", "main", str(self.work))
        self.runs = 0

    def env(self, **extra: str) -> dict[str, str]:
        return _env(self.tmp, self.bin, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                    GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid", **extra)

    def git(self, cwd: Path, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=60,
                              check=True).stdout.strip()

    def commit(self, files: dict[str, str], branch: str = "main") -> tuple[str, str, list[str]]:
        """Commit `files` and push them to `branch`: (before, after, the changed paths), as the push event has them."""
        before = self.git(self.work, "rev-parse", "--verify", "-q", "HEAD") if (self.work / ".git" / "refs" / "heads"
                                                                                 / "main").exists() else ZERO
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        self.git(self.work, "add", "-A")
        self.git(self.work, "commit", "-qm", f"change {sorted(files)}")
        after = self.git(self.work, "rev-parse", "HEAD")
        self.git(self.work, "push", "-q", str(self.origin), f"HEAD:refs/heads/{branch}")
        return before, after, sorted(files)

    def test_job(self, event: str, branch: str, before: str, after: str, inputs: dict[str, object]) -> int:
        """Walk test.yml's job as GitHub runs it for this event: how many `.ci/run` steps run (0 or 1)."""
        workflow = _workflow("test.yml")
        [job] = workflow["jobs"].values()
        context: dict[str, object] = {"github.event_name": event, "github.ref": f"refs/heads/{branch}",
                                      "github.event.before": before, "github.sha": after}
        context.update({f"inputs.{key}": value for key, value in inputs.items()})
        self.runs += 1
        checkout = self.tmp / f"run{self.runs}"
        output = self.tmp / f"run{self.runs}.output"
        ran = 0
        for step in job["steps"]:
            if not _condition(step, context):
                continue
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                depth = int(_substitute((step.get("with") or {}).get("fetch-depth", 1), context))
                self.git(self.tmp, "clone", "-q", "--no-checkout", *([f"--depth={depth}"] if depth else []),
                         "--branch", branch, self.origin.as_uri(), str(checkout))
                self.git(checkout, "checkout", "-q", after)
                continue
            run = str(step.get("run", ""))
            if re.search(r"(^|\s)(bash )?\.ci/run\s*$", run, re.MULTILINE):
                ran += 1
                continue
            if run.startswith("chown "):
                continue   # the container's root takes the checkout: the same user here
            output.write_text("")
            env = {key: _substitute(value, context) for key, value in (step.get("env") or {}).items()}
            proc = _bash(run, checkout, self.env(GITHUB_SHA=after, GITHUB_OUTPUT=str(output),
                                                 RUNNER_TEMP=str(self.tmp), **env))
            assert proc.returncode == 0, (step.get("name"), proc.stdout, proc.stderr)
            for line in output.read_text().splitlines():
                key, _, value = line.partition("=")
                context[f"steps.{step.get('id')}.outputs.{key}"] = value
        return ran

    def suite_runs(self, event: str, branch: str, before: str, after: str, changed: list[str]) -> int:
        """Every `.ci/run` this event starts: test.yml's own run, and release.yml's `test` job (workflow_call)."""
        total = 0
        test = _workflow("test.yml")
        if event == "pull_request" or (event == "push" and _push_starts(test, branch, changed)):
            total += self.test_job(event, branch, before, after, inputs={})   # no inputs: null in this run
        release = _workflow("release.yml")
        if event == "push" and _push_starts(release, branch, changed):
            for job in release["jobs"].values():
                if job.get("uses") == "./.github/workflows/test.yml":
                    called = _on(test)["workflow_call"] or {}
                    defaults = {key: spec.get("default") for key, spec in (called.get("inputs") or {}).items()}
                    total += self.test_job(event, branch, before, after, inputs={**defaults, **(job.get("with") or {})})
        return total


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    made = Repo(tmp_path)
    made.commit({"goldgate/app.py": "v = 1\n", "docs/GUIDE.md": "guide\n", "README.md": "readme\n"})
    return made


def test_a_push_to_main_that_releases_runs_the_suite_once(repo: Repo) -> None:
    before, after, changed = repo.commit({"goldgate/app.py": "v = 2\n", "docs/GUIDE.md": "guide 2\n"})
    assert _push_starts(_workflow("release.yml"), "main", changed)
    assert repo.suite_runs("push", "main", before, after, changed) == 1


def test_a_push_of_several_commits_to_main_that_releases_runs_the_suite_once(repo: Repo) -> None:
    before, _after, _changed = repo.commit({"goldgate/app.py": "v = 2\n"})
    _, after, _ = repo.commit({"docs/GUIDE.md": "guide 2\n"})
    # The push's last commit touches docs alone; the push (before..after) changes code, so release.yml runs.
    assert repo.suite_runs("push", "main", before, after, ["docs/GUIDE.md", "goldgate/app.py"]) == 1


@pytest.mark.parametrize("files", [{"docs/GUIDE.md": "guide 2\n"}, {"README.md": "readme 2\n", "a b/é.md": "x\n"},
                                   {"scripts/golden-tests/reports/latest.json": "{}\n"}], ids=["docs", "md", "reports"])
def test_a_push_to_main_that_release_yml_ignores_is_still_tested_once(repo: Repo, files: dict[str, str]) -> None:
    before, after, changed = repo.commit(files)
    assert not _push_starts(_workflow("release.yml"), "main", changed)
    assert repo.suite_runs("push", "main", before, after, changed) == 1


def test_a_push_to_another_branch_and_a_pull_request_are_tested_once(repo: Repo) -> None:
    before = repo.git(repo.work, "rev-parse", "HEAD")
    _, after, changed = repo.commit({"goldgate/app.py": "v = 3\n"}, branch="feature")
    assert repo.suite_runs("push", "feature", before, after, changed) == 1
    assert repo.suite_runs("pull_request", "feature", before, after, changed) == 1


def test_a_push_to_main_whose_first_commit_is_unknown_is_tested_rather_than_not_at_all(repo: Repo) -> None:
    # A force push (the old head gone) or a new branch (before = zeros): when in doubt, test here too.
    _before, after, changed = repo.commit({"goldgate/app.py": "v = 4\n"})
    assert repo.suite_runs("push", "main", ZERO, after, changed) >= 1
    assert repo.suite_runs("push", "main", "f" * 40, after, changed) >= 1


def test_test_yml_skips_only_what_release_yml_tests() -> None:
    # The `scope` step's case patterns are release.yml's paths-ignore: a path one ignores and the other does not
    # would leave a push to main untested (or tested twice).
    ignored = _on(_workflow("release.yml"))["push"]["paths-ignore"]
    [job] = _workflow("test.yml")["jobs"].values()
    [scope] = [step for step in job["steps"] if step.get("id") == "scope"]
    [patterns] = re.findall(r"^\s*([^\n()]*\*[^\n()]*)\)\s*;;", scope["run"], re.MULTILINE)
    as_case = {p.strip() for p in patterns.split("|")}
    paths = ["docs/a.md", "docs/x/y.png", "README.md", "images/worker/README.md", "goldgate/cli.py", "docs.py",
             "scripts/golden-tests/reports/latest.html", "scripts/golden-tests/cases/a.json", ".github/x.yml"]
    for path in paths:
        github = any(_glob(p, path) for p in ignored)
        case = any(fnmatch.fnmatchcase(path, p) for p in as_case)
        assert github == case, (path, ignored, as_case)
