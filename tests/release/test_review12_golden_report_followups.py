"""A run of `goldgate golden <stack> --update-references` passes by construction (each render is compared with the
reference it just wrote): its HTML report and its terminal summary say so, and say what comes next. And the log
catalogue's row for a failed golden run says which runs log it at error: every smoke run, a hand-run one too."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from release_support import TOKEN, golden_suite, standin_api

from goldgate.commands.release import _render_golden
from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.release.ledger import Ledger
from goldgate.release.report_html import render
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64
CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "LOG_EVENTS.md"
REWRITTEN = ("an --update-references run: each render it wrote as a reference was compared with itself; this report "
             "cannot open the gate")


def _run(tmp_path: Path, *, update_references: bool) -> dict[str, Any]:
    root = golden_suite(tmp_path)
    target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                         thresholds=Thresholds())
    with standin_api() as api:
        api.image_tag = IMAGE
        return run_suite(load_cases(root / "cases"), ApiAccess(api.url, TOKEN), target,
                         references_dir=root / "references", update_references=update_references, poll_s=0.01)


def _kv(page: str, key: str) -> str:
    match = re.search(rf"<tr><td>{key}</td><td><code>([^<]*)</code></td></tr>", page)
    assert match, f"no {key} row"
    return match.group(1)


def test_the_html_report_of_an_update_references_run_says_it_cannot_open_the_gate(tmp_path: Path) -> None:
    report = _run(tmp_path, update_references=True)
    assert report["passed"] is True
    page = render(report)
    # Before: "PASSED" with nothing to tell it from a run against the committed references.
    title_end = page.index("</h1>")
    assert page.index(REWRITTEN) > title_end and page.index(REWRITTEN) < page.index("<table class=kv>")
    assert _kv(page, "references_updated") == "True"


def test_an_ordinary_runs_html_report_carries_no_warning(tmp_path: Path) -> None:
    page = render(_run(tmp_path, update_references=False))
    assert "PASSED" in page and REWRITTEN not in page
    assert _kv(page, "references_updated") == "False"


def test_the_terminal_summary_of_an_update_references_run_says_what_comes_next(tmp_path: Path) -> None:
    text = _render_golden(_run(tmp_path, update_references=True))
    assert text.splitlines()[-1] == ("2 references were written by this run: look at each one (the reference lines "
                                     "above), commit them on their own, then run `goldgate golden staging`")
    ordinary = _render_golden(_run(tmp_path / "again", update_references=False))
    assert "written by this run" not in ordinary


def _golden_failed_row() -> str:
    [row] = [line for line in CATALOGUE.read_text(encoding="utf-8").splitlines()
             if line.startswith("| `release.golden_failed` |")]
    return row


def test_a_hand_run_smoke_failure_is_logged_at_the_level_the_catalogue_gives_it(tmp_path: Path) -> None:
    # `goldgate golden staging --smoke` by hand: nothing was promoted or rolled back, yet the line is an error.
    Ledger(tmp_path).append("golden", stack="staging", target="local", image=IMAGE, suite="smoke", passed=False,
                            trigger="user:t", failures=["square: image0 size 0 bytes"])
    [line] = [json.loads(t) for t in (tmp_path / "logs/release.jsonl").read_text().splitlines()]
    assert (line["event"], line["level"], line["stack"]) == ("release.golden_failed", "error", "staging")
    row = _golden_failed_row()
    # Before, the row said an error came only from a smoke suite after a promotion or rollback, which fails with it:
    # an operator paged by a hand run looked for a failed promotion that never happened.
    error_clause = row[row.index("At error"):]
    assert "`goldgate golden <stack> --smoke`" in error_clause
    assert "with neither, it was a smoke run by hand" in error_clause
