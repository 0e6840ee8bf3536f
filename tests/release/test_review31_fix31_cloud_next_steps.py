"""Every command a cloud release names as the next step carries what it needs to run as written: `--target cloud`
(without it the local target runs), the `--repo` a cloud build pushes to, and the golden paths the release was
given. Before: a failed golden run said "run `goldgate release --target cloud` again", which stops at once for want
of --repo; the first release's steps ended `goldgate promote --target cloud`, which gates on the default reports
directory, not the one the golden run wrote; and a cloud release's summary said its stacks serve "until `goldgate
down all`", which stops local stacks only."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest
from release_support import StandInApi, invoke, standin_api
from test_review13_a2_release_summary import UpTarget
from test_review27_fixrelease_cloud_prechecks import PUSH_TO, fill, project, references  # noqa: F401 -- a fixture

import goldgate.commands.release as release_commands
from goldgate.cli import main
from goldgate.release import build as builds
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths

PUSHED = f"{PUSH_TO}@sha256:{'c' * 64}"
VERSION = "2026.11.0"


def _pushed(_args: argparse.Namespace, ledger: Ledger) -> builds.BuildResult:
    """The docker build and push a cloud release makes (no Docker engine here): recorded as one."""
    result = builds.BuildResult(image=PUSHED, release_id=f"{VERSION}-test", repo=PUSH_TO, digest=f"sha256:{'c' * 64}",
                                identity=builds.identity_for(builds.WORKER_DIR, VERSION), target="docker")
    ledger.append("build", **result.to_dict(), trigger="test")
    return result


def test_a_failed_cloud_release_names_the_release_to_run_again_with_its_repo_and_paths(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=PUSHED, fail_workflows={"wf-b"})) as api:
        target = UpTarget(api, {})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        monkeypatch.setattr(release_commands, "do_build", _pushed)
        code, out, err = invoke(capsys, "release", "--home", str(home), "--target", "cloud", "--repo", PUSH_TO,
                                "--workflow-version", VERSION, "--concurrency", "2",
                                "--cases-dir", str(paths.cases_dir), "--references-dir", str(paths.references_dir),
                                "--reports-dir", str(paths.reports_dir))
    assert code == 1 and "prod" not in target.pins, err
    # The summary's result line, in full (the error line on stderr is cut to 600 characters in its middle).
    last = next(line for line in out.splitlines() if line.startswith("result "))
    again = (f"`goldgate release --target cloud --repo {PUSH_TO} --workflow-version {VERSION} --cases-dir "
             f"{paths.cases_dir} --references-dir {paths.references_dir} --reports-dir {paths.reports_dir}` again")
    assert last.endswith(again), last
    command = last.rsplit("`", 2)[1]
    assert shlex.split(command)[:6] == ["goldgate", "release", "--target", "cloud", "--repo", PUSH_TO]


def test_the_first_cloud_release_steps_promote_the_report_their_golden_run_writes(
        project: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: F811 -- the fixture
    fill(project)
    reports = tmp_path / "reports"
    code = main(["release", "--target", "cloud", "--repo", PUSH_TO, "--home", str(tmp_path / "home"),
                 "--reports-dir", str(reports), "--references-dir", str(references(tmp_path, leave_out=99))])
    err = capsys.readouterr().err
    assert code == 1, err
    steps = [line.removeprefix("…").strip() for line in err.splitlines() if line.startswith("…   goldgate ")]
    golden = next(s for s in steps if s.startswith("goldgate golden staging --target cloud --references-dir")
                  and "--update-references" not in s)
    promote = next(s for s in steps if s.startswith("goldgate promote"))
    assert f"--reports-dir {reports}" in golden, golden
    assert promote.startswith("goldgate promote --target cloud") and f"--reports-dir {reports}" in promote, promote
    assert "--image REF" in promote and "--references-dir" in promote, promote


def test_a_cloud_release_does_not_say_goldgate_down_stops_its_stacks(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths) -> None:
    with standin_api(StandInApi(image_tag=PUSHED)) as api:
        target = UpTarget(api, {})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        monkeypatch.setattr(release_commands, "do_build", _pushed)
        code, out, err = invoke(capsys, "release", "--home", str(tmp_path / "home"), "--target", "cloud", "--repo",
                                PUSH_TO, "--workflow-version", VERSION, "--concurrency", "2",
                                "--cases-dir", str(paths.cases_dir), "--references-dir", str(paths.references_dir),
                                "--reports-dir", str(paths.reports_dir))
    assert code == 0, err
    result = next(line for line in out.splitlines() if line.startswith("result "))
    assert result.startswith("result       OK") and "goldgate down" not in result, result
    assert "--target cloud" in result, result
