"""`goldgate stuck <stack>`: the jobs whose webhook never came (queued or in progress longer than a job may run),
oldest first, each with its deadline and the recover line, from a stack's SQLite (read-only) or its D1; exit 1 when
there is one, so a cron can alert. Every wrong input is one line."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest
from ops_fixtures import migrated_d1

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.local.platform import LocalPlatform
from goldgate.migrations import MIGRATIONS_DIR, apply_sqlite
from goldgate.ops import stuck
from service.jobs import iso_ms

MIN = 60
TOKEN = "cf-stuck-token-abcdef0123456789"
STAGING = specs.load_local("staging")  # execution_timeout_ms 600000 (10 min), ttl_ms 3600000 (1 h)
TTL_S = STAGING.endpoint.ttl_ms / 1000
# service/recover.py: created_at + the ttl and /run timeout the job was sent with + 10 minutes of slack
SLACK_S = 600

_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, runpod_job_id, "
        "created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) "
        "VALUES (?, ?, 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', '{}', ?, ?, ?, ?, ?, ?, ?, ?)")


def _job(job_id: str, status: str, age_s: float, now: float, runpod: str | None = "rp-1",
         ttl_ms: int | None = 3_600_000, run_timeout_ms: int | None = 10_000, stack: str = "staging") -> tuple:
    created = now - age_s
    return (job_id, stack, job_id, status, runpod, iso_ms(created), int(created * 1000), iso_ms(created), ttl_ms,
            run_timeout_ms)


def _jobs(now: float) -> list[tuple]:
    return [
        _job("a" * 32, "queued", 3 * 3600, now, runpod=None, ttl_ms=None, run_timeout_ms=None),  # before 0005
        _job("b" * 32, "in_progress", 2 * 3600, now, runpod="rp-b"),   # past 1 h + 10 s + 10 min
        _job("c" * 32, "queued", 30 * MIN, now, runpod=None),          # within its deadline, no RunPod id
        _job("d" * 32, "in_progress", 15 * MIN, now, runpod="rp-d"),
        _job("e" * 32, "queued", 5 * MIN, now),                        # younger than 10 min: may be running
        _job("f" * 32, "completed", 4 * 3600, now),
        _job("0" * 32, "failed", 4 * 3600, now),
    ]


def _db(path: Path, rows: list[tuple]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    apply_sqlite(path)
    with sqlite3.connect(path) as conn:
        conn.executemany(_JOB, rows)
    conn.close()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_lists_the_stuck_jobs_oldest_first_with_deadline_and_recover_line_and_exits_1(home, capsys):
    db = _db(LocalPlatform(home).db_path("staging"), _jobs(time.time()))
    before = _digest(db)
    assert main(["stuck", "staging", "--home", str(home), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [j["id"] for j in out["jobs"]] == ["a" * 32, "b" * 32, "c" * 32, "d" * 32]
    assert out["stuck"] == 4 and out["more"] == 0 and out["younger"] == 1 and out["older_than_minutes"] == 10
    by_id = {j["id"]: j for j in out["jobs"]}
    assert [by_id[i]["past_deadline"] for i in ("a" * 32, "b" * 32, "c" * 32, "d" * 32)] == [True, True, False, False]
    assert by_id["d" * 32]["recover"] == f"goldgate recover {'d' * 32} --stack staging"
    assert by_id["d" * 32]["runpod_job_id"] == "rp-d" and by_id["d" * 32]["advice"] is None
    assert "--runpod-job-id" in by_id["c" * 32]["advice"] and "job.runpod_id_unrecorded" in by_id["c" * 32]["advice"]
    assert "records it failed" in by_id["a" * 32]["advice"]
    assert _digest(db) == before  # read-only

    assert main(["stuck", "staging", "--home", str(home)]) == 1
    text = capsys.readouterr().out
    assert text.startswith("staging: 4 jobs stuck (local: queued or in progress for more than 10 min")
    assert f"      goldgate recover {'c' * 32} --stack staging" in text
    assert "runpod (none recorded)" in text and "PAST its deadline" in text
    assert "1 younger job queued or in progress, not listed" in text


def test_the_deadline_is_recovers_own_from_the_ttl_and_timeout_each_job_was_sent_with(home):
    now = 1_795_000_000.0
    sent_s = 3600 + 10 + SLACK_S  # 1 h ttl + 10 s /run timeout + slack
    rows = [_job("1" * 32, "queued", sent_s + 1, now), _job("2" * 32, "queued", sent_s - 1, now),
            # a job sent with a 2 h ttl, before the stack lowered it: judged by its own
            _job("3" * 32, "queued", sent_s + 60, now, ttl_ms=7_200_000),
            # recorded before migration 0005: the stack's ttl and the service's default /run timeout (10 s)
            _job("4" * 32, "queued", sent_s + 1, now, ttl_ms=None, run_timeout_ms=None)]
    db = _db(LocalPlatform(home).db_path("staging"), rows)
    report = stuck.list_local(STAGING, db, 10, now_s=now)
    past = {j.id[0]: j.past_deadline for j in report.jobs}
    assert past == {"1": True, "2": False, "3": False, "4": True}
    assert {j.id[0]: j.deadline for j in report.jobs}["2"] == iso_ms(now + 1)  # created sent_s - 1 ago


def test_no_stuck_job_exits_0_and_counts_the_younger_ones(home, capsys):
    now = time.time()
    _db(LocalPlatform(home).db_path("staging"), [_job("e" * 32, "queued", 2 * MIN, now),
                                                 _job("f" * 32, "completed", 3600, now)])
    assert main(["stuck", "staging", "--home", str(home)]) == 0
    assert capsys.readouterr().out.strip() == ("staging: no job stuck (local: none queued or in progress for more "
                                               "than 10 min); 1 younger may simply be running\n"
                                               "  in flight: 1 of at most 1000 (api.max_jobs_in_flight: a create "
                                               "beyond it is answered 429 queue_full; a stuck job counts until its "
                                               "ttl and /run timeout have passed)")
    assert main(["stuck", "staging", "--home", str(home), "--older-than", "1", "--json"]) == 1
    assert [j["id"] for j in json.loads(capsys.readouterr().out)["jobs"]] == ["e" * 32]


def test_older_than_0_lists_every_unfinished_job(home, capsys):
    _db(LocalPlatform(home).db_path("staging"), _jobs(time.time()))
    assert main(["stuck", "staging", "--home", str(home), "--older-than", "0", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["stuck"] == 5 and out["younger"] == 0


def test_the_output_is_bounded_and_says_how_many_more(home, capsys):
    now = time.time()
    _db(LocalPlatform(home).db_path("staging"), [_job(f"{n:032x}", "queued", 3600 + n, now) for n in range(7)])
    assert main(["stuck", "staging", "--home", str(home), "--limit", "3"]) == 1
    text = capsys.readouterr().out
    assert "staging: 7 jobs stuck" in text and "... and 4 more, not listed (--limit 3" in text
    assert text.count("goldgate recover ") == 3
    assert f"{6:032x}" in text.splitlines()[1]  # the oldest first


def test_an_unknown_stack_is_one_line(home, capsys):
    assert main(["stuck", "nope", "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert "no stack named 'nope'" in err and err.count("\n") == 1


def test_a_stack_never_brought_up_is_an_error_not_none_stuck(home, capsys):
    # A cron with the wrong state dir must not read "no job stuck" for ever.
    assert main(["stuck", "staging", "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert "no database at" in err and "never brought up" in err and err.count("\n") == 1
    assert not LocalPlatform(home).db_path("staging").exists()


def test_a_database_an_older_goldgate_left_says_to_bring_the_stack_up(home, tmp_path, capsys):
    db = LocalPlatform(home).db_path("staging")
    db.parent.mkdir(parents=True)
    before = tmp_path / "migrations-0001"
    before.mkdir()
    (before / "0001_init.sql").write_text((MIGRATIONS_DIR / "0001_init.sql").read_text())
    apply_sqlite(db, before)
    assert main(["stuck", "staging", "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert "migrations not applied" in err and "`goldgate up staging`" in err and err.count("\n") == 1


@pytest.mark.parametrize("content", [b"", b"not a database at all, just text" * 40])
def test_a_file_that_is_no_goldgate_database_is_one_line(home, capsys, content):
    db = LocalPlatform(home).db_path("staging")
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    assert main(["stuck", "staging", "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert "goldgate up staging" in err and err.count("\n") == 1 and "Traceback" not in err
    assert db.read_bytes() == content


@pytest.mark.parametrize(("flag", "value", "said"), [
    ("--older-than", "-1", "not a whole number of minutes"), ("--older-than", "1.5", "not a whole number"),
    ("--older-than", "ten", "not a whole number"), ("--older-than", "9" * 5000, "out of range"),
    ("--older-than", "5256001", "out of range"), ("--limit", "0", "row count"), ("--limit", "1001", "row count"),
    ("--limit", "x", "row count")])
def test_bad_numbers_are_one_usage_line_and_exit_2(home, capsys, flag, value, said):
    with pytest.raises(SystemExit) as exit_:
        main(["stuck", "staging", "--home", str(home), f"{flag}={value}"])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert said in last and flag in last and len(last) < 700


def test_a_database_id_without_cloud_reads_nothing(home, capsys):
    _db(LocalPlatform(home).db_path("staging"), _jobs(time.time()))
    argv = ["stuck", "staging", "--home", str(home), "--database-id", "12345678-1234-1234-1234-123456789abc"]
    assert main(argv) == 1
    assert "add --cloud" in capsys.readouterr().err


def test_the_default_window_is_the_stacks_execution_timeout_and_help_says_so(capsys):
    assert stuck.default_older_than_minutes(STAGING) == 10
    with pytest.raises(SystemExit):
        main(["stuck", "--help"])
    assert "execution timeout" in " ".join(capsys.readouterr().out.split())


# -- D1 over REST ----------------------------------------------------------------------------------

@pytest.fixture
def cloud():
    with migrated_d1(TOKEN) as cloud:
        yield cloud


def _cloud_argv(standin, database: str, *extra: str) -> list[str]:
    return ["stuck", "staging", "--cloud", "--database-id", database, "--account-id", standin.account_id,
            "--api-base", standin.api_base, *extra]


def test_d1_lists_the_same_jobs_with_the_admin_routes_recover_line(cloud, tmp_path, monkeypatch, capsys):
    standin, d1, database = cloud
    for row in _jobs(time.time()):
        d1.query(database, _JOB, list(row))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    assert main([*_cloud_argv(standin, database, "--home", str(tmp_path)), "--json"]) == 1
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["target"] == "cloud" and [j["id"] for j in data["jobs"]] == ["a" * 32, "b" * 32, "c" * 32, "d" * 32]
    assert [j["past_deadline"] for j in data["jobs"]] == [True, True, False, False]
    assert data["jobs"][3]["recover"] == f"goldgate recover {'d' * 32} --stack staging --target cloud"
    assert data["jobs"][3]["recover_by_hand"].endswith(
        f"\"$(pulumi stack output api_url --stack staging)/api/admin/recover/{'d' * 32}\"")
    assert "runpod_job_id" in data["jobs"][2]["advice"] and TOKEN not in out
    sql = [r for r in standin.requests if "query" in str(r)]
    assert sql  # it did go through the REST API
    assert {j["id"] for j in d1.query(database, "SELECT id FROM jobs")} == {r[0] for r in _jobs(0)}


def test_d1_with_no_stuck_job_exits_0(cloud, tmp_path, monkeypatch, capsys):
    standin, _, database = cloud
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    assert main(_cloud_argv(standin, database, "--home", str(tmp_path))) == 0
    assert capsys.readouterr().out.startswith("staging: no job stuck (cloud: none")


def test_d1_of_another_stack_is_refused(cloud, tmp_path, monkeypatch, capsys):
    standin, d1, database = cloud
    d1.query(database, _JOB, list(_job("a" * 32, "queued", 3600, time.time(), stack="prod")))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    assert main(_cloud_argv(standin, database, "--home", str(tmp_path))) == 1
    err = capsys.readouterr().err
    assert "holds the jobs of stack 'prod'" in err and "check --database-id" in err


def test_d1_without_the_token_or_with_a_bad_id_makes_no_call(cloud, tmp_path, monkeypatch, capsys):
    standin, _, database = cloud
    seen = len(standin.requests)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    assert main(_cloud_argv(standin, database, "--home", str(tmp_path))) == 1
    assert "CLOUDFLARE_API_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    assert main(_cloud_argv(standin, f"{database}/../x", "--home", str(tmp_path))) == 1
    assert "is not a D1 uuid" in capsys.readouterr().err
    assert main(["stuck", "staging", "--cloud", "--home", str(tmp_path)]) == 1
    assert "--database-id is required" in capsys.readouterr().err
    assert len(standin.requests) == seen


def test_d1_that_is_not_a_goldgate_database_is_one_line(tmp_path, monkeypatch, capsys):
    with D1StandIn(TOKEN) as standin, CloudflareApi(TOKEN, standin.api_base) as api:
        database = D1Client(api, standin.account_id, poll_interval_s=0.0).create_database("other").uuid
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
        assert main(_cloud_argv(standin, database, "--home", str(tmp_path))) == 1
    err = capsys.readouterr().err
    assert "not a migrated goldgate database" in err and "check --database-id" in err
