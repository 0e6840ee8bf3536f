"""`goldgate stuck` says how full the stack is against its cap on jobs in flight (api.max_jobs_in_flight): the
operator a `job.queue_full` line sends there sees at once whether the stack is full, and of what. Counted as
the service counts at create (a job past its own lifetime no longer counts)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from test_review16_stuck_cli import MIN, STAGING, _db, _job, _jobs

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.ops import stuck


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_the_count_is_the_services_a_job_past_its_lifetime_does_not_count(home: Path) -> None:
    now = time.time()
    db = _db(LocalPlatform(home).db_path("staging"), _jobs(now))
    report = stuck.list_local(STAGING, db, 10, now_s=now)
    # a: before 0005, 3 h old: counts (7 days); b: 2 h old, 1 h ttl + 10 s + 10 min: no longer; c, d, e count;
    # the ended ones do not
    assert (report.in_flight, report.max_jobs_in_flight) == (4, STAGING.api.max_jobs_in_flight)


def test_a_full_stack_says_full_in_text_and_json(home: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    _db(LocalPlatform(home).db_path("staging"), [_job(f"{n:032x}", "queued", 2 * MIN, now) for n in range(3)])
    small = dataclasses.replace(STAGING, api=dataclasses.replace(STAGING.api, max_jobs_in_flight=3))
    monkeypatch.setattr("goldgate.spec.load_local", lambda name, *a, **k: small)
    assert main(["stuck", "staging", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "  in flight: 3 (FULL) of at most 3 (api.max_jobs_in_flight: a create beyond it is answered 429 " \
           "queue_full" in out
    assert main(["stuck", "staging", "--home", str(home), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["in_flight"], answer["max_jobs_in_flight"]) == (3, 3)
