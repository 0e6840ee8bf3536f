"""Game day, "A failed promotion": the runbook says a refusal "names each failed condition", and its
table is looked up by those names. The refusal's error line is cut to one terminal line, so with several
conditions failed whole conditions went missing from what `goldgate promote` printed (a report copied
from elsewhere failed eleven, and four were cut out). The refusal now prints the gate as `--check` does,
every condition with its reason in full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldgate.cli import main

A = "local/worker@sha256:" + "a" * 64


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_refused_promotion_prints_every_failed_condition_with_its_reason(capsys, tmp_path: Path) -> None:
    report = tmp_path / "copied.json"  # a report from another state dir: most of the gate fails
    report.write_text(json.dumps({"schema": "goldgate.golden-report.v1", "stack": "staging", "image": A}))
    opts = ["--report", str(report), "--home", str(tmp_path / "home")]
    code, out, _ = _run(capsys, "promote", "--check", "--json", *opts)
    failed = [c for c in json.loads(out)["conditions"] if not c["passed"]]
    assert code == 1 and len(failed) > 5, failed  # enough that they cannot all fit one error line

    code, out, err = _run(capsys, "promote", *opts)
    assert code == 1
    for condition in failed:
        row = next((ln for ln in out.splitlines() if ln.split()[:2] == [condition["name"], "FAILED"]), None)
        assert row is not None and condition["detail"] in row, (condition, out)
    assert "promotion refused" in err and "Traceback" not in err
    assert "docs/RUNBOOK.md, A failed promotion" in out  # where each name is looked up
