"""What an operator reads after a golden run that went wrong, on a real local stack (review 19).

A run over `--cases-dir` holding one case said "full suite" (the words of the run the gate asks for). A run whose
every case got 401 (a wrong API token) printed "latency p50 None s, ... vs 0 s summed over cases", each case's
progress line "FAIL in - s", and its HTML page "None / None / None / None s" and a 0.00 s bar per case. The
release summary printed the same None figures, and history's row for the one-case run said "full".
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from release_support import invoke

from goldgate.commands import release as release_cmd
from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.release import report as report_module
from goldgate.release.cases import GOLDEN_DIR, load_cases
from goldgate.release.report_html import render


@dataclass
class Stack:
    home: Path
    suite: Path

    def args(self, *extra: str, cases: str = "cases") -> list[str]:
        return ["golden", "staging", "--home", str(self.home), "--cases-dir", str(self.suite / cases),
                "--references-dir", str(self.suite / "references"), "--reports-dir", str(self.suite / "reports"),
                "--concurrency", "1", *extra]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("out-home")
    suite = tmp_path_factory.mktemp("out-suite")
    for sub in ("cases", "covering", "references"):
        (suite / sub).mkdir()
    shutil.copy(GOLDEN_DIR / "cases" / "flux-fox.yaml", suite / "cases")
    # A run that passes must run a case of each workflow the stack serves (flux-schnell-lora, sdxl-txt2img, and the
    # first case of any other shipped workflow: a team's added one).
    others = {c.workflow: c.id for c in reversed(load_cases()) if c.workflow not in ("flux-schnell-lora", "sdxl-txt2img")}
    for case in ("flux-fox", "sdxl-defaults", *others.values()):
        shutil.copy(GOLDEN_DIR / "cases" / f"{case}.yaml", suite / "covering")
        shutil.copy(GOLDEN_DIR / "references" / "local" / f"{case}.png", suite / "references")
    platform = LocalPlatform(home)
    try:
        ensure_up(platform, "staging")
        yield Stack(home, suite)
    finally:
        platform.down("staging")


@pytest.fixture
def wrong_token(stack: Stack) -> Iterator[None]:
    """The token file goldgate reads is not the one the running service checks: every request gets 401."""
    token = StackDir(stack.home, "staging").secret_file("api_token")
    kept = token.read_text()
    token.write_text("w" * 64)
    try:
        yield
    finally:
        token.write_text(kept)


def _summary(out: str) -> list[str]:
    return out.strip().splitlines()[-2:]


def test_a_run_over_another_cases_dir_names_its_cases_not_the_full_suite(
        stack: Stack, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = invoke(capsys, *stack.args(cases="covering"))
    assert code == 0, out
    verdict, latency = _summary(out)
    assert "full suite" not in verdict, verdict
    covering = len(list((stack.suite / "covering").glob("*.yaml")))
    assert verdict.startswith(f"{covering} cases of {(stack.suite / 'covering').resolve()} on staging ("), verdict
    assert verdict.endswith("): PASSED"), verdict
    assert latency.startswith("latency p50 ") and latency.endswith(" s summed over cases"), latency
    # History's row for the run says so too (its PHASE column said "full").
    code, out, _ = invoke(capsys, "history", "--home", str(stack.home))
    row = next(line for line in out.splitlines() if " golden " in line)
    assert f" {covering} cases of {(stack.suite / 'covering').resolve()} " in row and " full " not in row, out


def test_a_run_whose_every_case_got_401_prints_no_none_and_says_no_latency_was_measured(
        stack: Stack, wrong_token: None, capsys: pytest.CaptureFixture) -> None:
    code, out, err = invoke(capsys, *stack.args())
    assert code == 1, out
    verdict, latency = _summary(out.split("\n  failure:")[0])
    assert verdict.endswith("FAILED (0 of 1 case passed)"), verdict
    assert latency.startswith("latency: none measured (no case's job reached a final status"), latency
    assert "None" not in out, out
    assert "0 s summed" not in out, out
    # Each case's progress line says why it has no latency rather than "in - s".
    assert "flux-fox: FAIL before its job's final status: queue/create answered 401" in err, err
    assert " in - s" not in err, err

    reports = sorted((stack.suite / "reports").glob("*-staging.json"))
    html = reports[-1].with_suffix(".html").read_text()
    assert "None" not in html, html
    assert "0.00 s" not in html and "no latency: its job reached no final status" in html, html
    assert "latency: none measured" in html, html

    # The release summary prints the same words for the same report.
    code, out, _ = invoke(capsys, *stack.args("--json"))
    assert code == 1
    report = json.loads(out)
    summary = release_cmd._render_release({
        "image": report["image"], "release_id": "r", "prod_image": None, "duration_s": 1, "up_s": 1, "build_s": 1,
        "ok": False, "error": "golden suite failed",
        "golden": {"passed": False, "report": "r.json", "html": "r.html", "cases": len(report["cases"]),
                   "cases_passed": sum(c["passed"] is True for c in report["cases"]),
                   "latency_s": report["latency_s"], "wall_time_s": report["wall_time_s"],
                   "sum_latency_s": report["sum_latency_s"], "failures": report["failures"]}})
    assert "None s" not in summary and "latency: none measured" in summary, summary
    assert "golden       FAILED: 0 of 1 case passed\n" in summary, summary   # it said "1 cases"


def _case(case_id: str, latency: float | None) -> dict[str, object]:
    return {"id": case_id, "workflow_id": "wf", "smoke": False, "job_id": None, "passed": latency is not None,
            "latency_s": latency, "checks": []}


def test_figures_over_some_of_the_cases_say_over_how_many() -> None:
    line = report_module.latency_words({"count": 1, "p50": 2.0, "p95": 2.0, "mean": 2.0, "max": 2.0}, 3, 9.1, 2.0)
    assert line.startswith("latency over the 1 timed case of 3 p50 2.0 s"), line
    assert line.endswith("vs 2.0 s summed over the timed cases"), line
    # The HTML page draws no bar for the untimed cases, and says so.
    page = render({"stack": "staging", "passed": False, "cases": [_case("a", 2.0), _case("b", None)],
                   "latency_s": {"count": 1, "p50": 2.0, "p95": 2.0, "mean": 2.0, "max": 2.0},
                   "wall_time_s": 3.0, "sum_latency_s": 2.0, "thresholds": {}})
    assert page.count("<rect ") == 1 and "2.00 s" in page and "0.00 s" not in page, page


def test_a_run_of_the_golden_suite_itself_is_still_called_the_full_suite() -> None:
    report = {"suite": "full", "stack": "staging", "image": "i", "passed": True, "cases": [_case("a", 1.0)],
              "latency_s": {"count": 1, "p50": 1.0, "p95": 1.0, "mean": 1.0, "max": 1.0}, "wall_time_s": 1.2,
              "sum_latency_s": 1.0, "failures": []}
    shown = release_cmd._render_golden(report, GOLDEN_DIR / "cases")
    assert "full suite (1 case) on staging (i): PASSED" in shown, shown
    smoke = release_cmd._render_golden({**report, "suite": "smoke"}, Path("/elsewhere/cases"))
    assert "1 smoke case of /elsewhere/cases on staging (i): PASSED" in smoke, smoke
