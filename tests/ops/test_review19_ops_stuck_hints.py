"""What `goldgate stuck` tells an operator to run is accepted as printed.

With more stuck jobs than --limit takes (at most 1000), the line under the list said "--limit 1000: a larger one
lists them", and `--limit 1001` is refused. The cloud form's first line reads the stack's API token from the
Pulumi config key the program stores it under."""

from __future__ import annotations

import importlib.util
import re
import sqlite3
import time
from pathlib import Path

import pytest
from ci_policy import require

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.migrations import apply_sqlite
from goldgate.ops import stuck
from service.jobs import iso_ms

MANY = stuck.MAX_LIMIT + 200

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, runpod_job_id, "
        "created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) "
        "VALUES (printf('%032x', ?1), 'staging', 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', '{}', 't', 'in_progress', "
        "'rp', ?2, ?3, ?2, 3600000, 10000)")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """STAGING with MANY jobs in progress for over two hours, a second apart."""
    home = tmp_path / "home"
    path = LocalPlatform(home).db_path("staging")
    path.parent.mkdir(parents=True)
    apply_sqlite(path)
    now = time.time()
    rows = [(n, iso_ms(now - 7200 - n), int((now - 7200 - n) * 1000)) for n in range(MANY)]
    with sqlite3.connect(path) as conn:
        conn.executemany(_JOB, rows)
    conn.close()
    return home


def _more_line(home: Path, capsys: pytest.CaptureFixture, *limit: str) -> str:
    assert main(["stuck", "staging", "--home", str(home), *limit]) == 1
    return next(line for line in capsys.readouterr().out.splitlines() if "more, not listed" in line)


def _accepted(home: Path, capsys: pytest.CaptureFixture, line: str) -> None:
    for n in re.findall(r"--limit (\d+)", line):
        try:
            code = main(["stuck", "staging", "--home", str(home), "--limit", n])
        except SystemExit as exc:  # argparse's refusal
            code = exc.code
        out, err = capsys.readouterr()
        assert code == 1, f"`--limit {n}`, from {line!r}, was refused: {err}"
        assert out.count("goldgate recover ") == int(n)


def test_at_the_largest_limit_no_larger_one_is_advised(home, capsys):
    line = _more_line(home, capsys, "--limit", str(stuck.MAX_LIMIT))
    assert f"... and {MANY - stuck.MAX_LIMIT} more" in line
    assert "a larger one" not in line, line  # --limit 1001 is refused
    assert "run it again" in line, line
    _accepted(home, capsys, line)


def test_below_it_the_limit_named_is_one_the_cli_takes(home, capsys):
    line = _more_line(home, capsys)  # the default, 50
    assert f"--limit {stuck.MAX_LIMIT}" in line, line
    _accepted(home, capsys, line)


def test_with_fewer_than_the_largest_limit_a_larger_one_still_lists_them(home, capsys):
    line = _more_line(home, capsys, "--limit", "3", "--older-than", "125")  # 899 stuck
    assert "(--limit 3: a larger one lists them)" in line, line


def test_the_cloud_lines_read_the_api_token_the_program_stores():
    require(importlib.util.find_spec("pulumi") is not None, "pulumi (the infra program's import)")
    from infra.program import API_SECRET_KEYS

    job = stuck.StuckJob(id="a" * 32, status="queued", created_at="2026-01-01T00:00:00.000Z", age_s=7200,
                         runpod_job_id="rp", deadline="2026-01-01T01:10:10.000Z", past_deadline=True,
                         recover=stuck.recover_line("a" * 32, "prod", "cloud"), advice=None)
    report = stuck.StuckReport(stack="prod", target="cloud", now="2026-01-01T02:00:00.000Z", older_than_minutes=10,
                               created_before="2026-01-01T01:50:00.000Z", stuck=1, more=0, younger=0, jobs=[job])
    text = stuck.render_text(report.to_dict())
    assert f"pulumi config get goldgate:{API_SECRET_KEYS['api_token']} --stack prod" in text, text
    assert '"$(pulumi stack output api_url --stack prod)/api/admin/recover/' + "a" * 32 in text
