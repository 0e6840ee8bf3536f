"""Review 34 (spendrel): `goldgate golden` and `goldgate promote --check` against the real service (uvicorn over
SQLite, moto for R2, the RunPod stand-in of test_golden_idempotent_create.py) started with a daily spend limit of
$0.5, its day's spend written where its jobs' metrics batches write it (`daily_spend`). A golden run on STAGING at
the limit writes no report and no ledger entry (it is no verdict on the image: `latest.json`, the gate's evidence,
stays as it was), and `promote --check` reads the limit from the service's own GET /api/metrics."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import test_golden_idempotent_create as live
from release_support import invoke, render_png, write_case
from test_gate_and_lock import Stacks

import goldgate.commands.release as release_commands
from goldgate.release.golden import ApiAccess
from goldgate.release.ledger import Ledger

LIMIT_USD = 0.5


class LiveStacks(Stacks):
    """STAGING and PROD both served by the one live service (each stack's role is its name)."""

    def api_access(self, stack: str) -> ApiAccess:
        return ApiAccess(self.api_url, live.TOKEN)


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[live.Stack]:
    start = live.start_in_thread

    def with_a_limit(config: Any, **kwargs: Any) -> Any:
        return start(dataclasses.replace(config, daily_spend_limit_usd=LIMIT_USD), **kwargs)

    monkeypatch.setattr(live, "start_in_thread", with_a_limit)
    with live.live_stack(tmp_path) as running:
        yield running


def _spent_today(stack: live.Stack, usd: float, jobs: int) -> None:
    """Today's row of daily_spend, as the jobs' metrics batches leave it (service/spend.py)."""
    conn = sqlite3.connect(stack.db_path)
    try:
        conn.execute("INSERT INTO daily_spend (day, usd, jobs) VALUES (?, ?, ?) ON CONFLICT (day) DO UPDATE SET "
                     "usd = excluded.usd, jobs = excluded.jobs",
                     (datetime.now(UTC).strftime("%Y-%m-%d"), usd, jobs))
        conn.commit()
    finally:
        conn.close()


def _suite(root: Path) -> list[str]:
    for name in ("lighthouse", "harbour"):
        write_case(root / "cases", name, f"workflow: sdxl-txt2img\nsmoke: true\ninputs: {{prompt: {name}, seed: 7}}\n"
                                         "expect: {images: 1, width: 64, height: 64, max_latency_s: 60}\n")
        (root / "references").mkdir(exist_ok=True)
        (root / "references" / f"{name}.png").write_bytes(render_png(f"{name}:7", 64, 64))
    return ["--cases-dir", str(root / "cases"), "--references-dir", str(root / "references"),
            "--reports-dir", str(root / "reports")]


def test_a_golden_run_on_staging_at_its_limit_writes_no_report_and_promote_check_says_prod_is_at_it(
        stack: live.Stack, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setattr(release_commands, "_deployer", lambda _args: LiveStacks(stack.url, {
        "staging": live.IMAGE, "prod": live.IMAGE}))
    paths = _suite(tmp_path / "golden")
    reports = tmp_path / "golden" / "reports"
    # Under the limit: the run is judged and written (it fails only on the workflows the service serves that no case
    # here runs), and it is latest.json.
    code, _, err = invoke(capsys, "golden", "staging", "--home", str(home), *paths)
    assert code == 1 and "FAIL" not in err, err
    first = (reports / "latest.json").read_bytes()
    written = sorted(p.name for p in reports.iterdir())
    assert len(stack.runpod.runs) == 2

    _spent_today(stack, LIMIT_USD, 2)
    code, out, err = invoke(capsys, "golden", "staging", "--home", str(home), *paths)
    assert code == 1 and out == "", out
    error = next(line for line in err.splitlines() if line.startswith("goldgate: error: "))
    assert error.startswith("goldgate: error: staging's daily spend limit was reached: no report was written, and "
                            f"the run is no verdict on {live.IMAGE} (2 of 2 case(s) got no job"), err
    assert ('run it again after 00:00 UTC, or once api.daily_spend_limit_usd is raised and applied (docs/RUNBOOK.md, '
            '"Clients get 429 spend_limit_reached"); queue/create answered 429 spend_limit_reached: ') in error, err
    # the service's refusal, whole, on the line of a case it refused (the error line is cut to 600 characters)
    assert f"at or over the stack's daily spend limit of ${LIMIT_USD:g} (api.daily_spend_limit_usd): this job was " \
           "not created; creates are taken again at " in err, err
    assert "jobs already queued or running go on and are counted; no job was created)" in err, err
    # the two cases' creates may go out together, before the first refusal comes back (none is sent after it: the
    # stand-in's test), and each was refused: nothing reached RunPod
    assert len(stack.creates()) in (3, 4) and len(stack.runpod.runs) == 2, stack.creates()
    assert sorted(p.name for p in reports.iterdir()) == written and (reports / "latest.json").read_bytes() == first
    golden_entries = [e for e in Ledger(home).entries() if e.kind == "golden"]
    assert len(golden_entries) == 1, [e.to_dict() for e in golden_entries]

    # promote --check reads PROD's daily spend from the service's GET /api/metrics: at the limit, it says the
    # promotion would be refused, with the service's numbers
    code, out, _ = invoke(capsys, "promote", "--check", "--home", str(home), *paths, "--json")
    assert code == 1, out
    refused = json.loads(out)["refused"]
    assert refused.startswith(f"cannot promote to prod: prod is at its daily spend limit (${LIMIT_USD:g} estimated "
                              f"for the 2 job(s) that ended today, {datetime.now(UTC):%Y-%m-%d} UTC; "
                              f"api.daily_spend_limit_usd is ${LIMIT_USD:g})"), refused
