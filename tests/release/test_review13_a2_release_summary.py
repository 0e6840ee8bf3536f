"""`goldgate release` as a user runs it, over the in-process target and the stand-in job API (the build is a real
local snapshot of images/worker). Its summary says why the golden suite failed, not only that it did; and its
promotion gates on the report its own golden run wrote, not on whatever reports/latest.json holds by then (a
concurrent `goldgate golden staging` in the same state dir may have replaced it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from release_support import StandInApi, invoke, standin_api
from test_promotion_evidence import A, _staging_passes
from test_promotion_partial_failure import Recorded

import goldgate.commands.release as release_commands
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths


class UpTarget(Recorded):
    def ensure_up(self, stack: str, progress) -> None:  # type: ignore[no-untyped-def]
        pass


def _release(capsys: pytest.CaptureFixture, home: Path, paths: GoldenPaths) -> tuple[int, str, str]:
    return invoke(capsys, "release", "--home", str(home), "--target", "local", "--engine", "local",
                  "--workflow-version", "2026.11.0", "--concurrency", "2", "--cases-dir", str(paths.cases_dir),
                  "--references-dir", str(paths.references_dir), "--reports-dir", str(paths.reports_dir))


def test_a_failed_golden_suite_is_explained_in_the_release_summary(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                  paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A, fail_workflows={"wf-b"})) as api:
        target = UpTarget(api, {})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, _err = _release(capsys, home, paths)
    assert code == 1
    golden = next(e for e in reversed(Ledger(home).entries()) if e.kind == "golden")
    failures = golden.get("failures")
    assert failures and any(f.startswith("batch:") for f in failures), failures
    lines = out.splitlines()
    report_at = next(i for i, line in enumerate(lines) if line.strip().startswith("report "))
    assert [line.strip() for line in lines[report_at + 1:report_at + 1 + len(failures)]] == [
        f"failure {f}" for f in failures]
    assert "prod" not in target.pins


def test_the_release_gates_on_its_own_report_when_latest_json_changes_under_it(monkeypatch: pytest.MonkeyPatch,
                                                                            capsys: pytest.CaptureFixture,
                                                                            tmp_path: Path,
                                                                            paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    real_run_golden = release_commands.run_golden
    with standin_api(StandInApi(image_tag=A)) as api:
        target = UpTarget(api, {})
        _staging_passes(target, ledger, paths, A)       # a `golden staging` started on A before the release deployed
        older = tmp_path / "older.json"
        shutil.copyfile(paths.reports_dir / "latest.json", older)

        def run_golden_then_a_concurrent_run_lands(*args, **kwargs):  # type: ignore[no-untyped-def]
            run = real_run_golden(*args, **kwargs)
            shutil.copyfile(older, paths.reports_dir / "latest.json")   # the other run finishes after ours
            return run

        monkeypatch.setattr(release_commands, "run_golden", run_golden_then_a_concurrent_run_lands)
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, err = _release(capsys, home, paths)
    assert code == 0, out + err
    built = next(e for e in reversed(ledger.entries()) if e.kind == "build").get("image")
    assert built != A and target.pins["prod"] == built
    golden = next(e for e in reversed(ledger.entries()) if e.kind == "golden" and e.get("stack") == "staging")
    intent = next(e for e in reversed(ledger.entries()) if e.kind == "promotion" and e.get("phase") == "intent")
    assert intent.get("report") == golden.get("report") and intent.get("report_sha256") == golden.get("report_sha256")
