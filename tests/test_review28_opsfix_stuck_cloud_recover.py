"""`goldgate stuck <stack> --cloud` gives, for each job, the documented manual recovery, `goldgate recover <job>
--stack <stack> --target cloud` (which finds the stack's API and token itself), not a curl line the operator fills
in with a token exported first. The curl line stays, once, for a machine without goldgate (and per job in
`--json`, as `recover_by_hand`); a job with no RunPod id recorded is told goldgate's own flag for it."""

from __future__ import annotations

import json
import shlex
import sqlite3
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "ops"))  # the operations test kit: a migrated D1 stand-in

from ops_fixtures import migrated_d1

from goldgate.cli import build_parser, main
from service.jobs import iso_ms

TOKEN = "cf-stuck-token-opsfix-0123456789"
_JOB = ("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, runpod_job_id, "
        "created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) "
        "VALUES (?, 'staging', 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', '{}', ?, 'queued', ?, ?, ?, ?, 3600000, 10000)")
WITH_ID, WITHOUT_ID = "d" * 32, "e" * 32


@pytest.fixture
def cloud(monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    with migrated_d1(TOKEN) as (standin, d1, database):
        created = time.time() - 30 * 60   # past the 10 min window, within its deadline
        for job_id, runpod_job_id in ((WITH_ID, "rp-d"), (WITHOUT_ID, None)):
            d1.query(database, _JOB, [job_id, job_id, runpod_job_id, iso_ms(created), int(created * 1000),
                                      iso_ms(created)])
        yield ["stuck", "staging", "--cloud", "--database-id", database, "--account-id", standin.account_id,
               "--api-base", standin.api_base, "--no-runpod"]


def test_each_stuck_job_gets_the_goldgate_recover_line_of_the_cloud(cloud, tmp_path, capsys):
    assert main([*cloud, "--home", str(tmp_path), "--json"]) == 1
    out = capsys.readouterr().out
    jobs = {j["id"]: j for j in json.loads(out)["jobs"]}
    assert set(jobs) == {WITH_ID, WITHOUT_ID} and TOKEN not in out
    for job_id, job in jobs.items():
        assert job["recover"] == f"goldgate recover {job_id} --stack staging --target cloud"
        # the line is one `goldgate recover` takes as it is: the cloud stack's job
        argv = shlex.split(job["recover"])
        args = build_parser().parse_args(argv[1:])
        assert (args.func.__name__, args.job_id, args.stack, args.target) == ("cmd_recover", job_id, "staging", "cloud")
        assert job["recover_by_hand"].endswith(
            f"\"$(pulumi stack output api_url --stack staging)/api/admin/recover/{job_id}\"")
    assert "--runpod-job-id <id>" in jobs[WITHOUT_ID]["advice"] and "-d '" not in jobs[WITHOUT_ID]["advice"]

    assert main([*cloud, "--home", str(tmp_path)]) == 1
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert f"      goldgate recover {WITH_ID} --stack staging --target cloud" in lines, text
    assert f"      goldgate recover {WITHOUT_ID} --stack staging --target cloud" in lines
    # the curl form is kept once, for a machine without goldgate, its token read into $API_TOKEN first
    assert text.count("/api/admin/recover/") == 1, text
    assert "  from a machine without goldgate: API_TOKEN=$(pulumi config get goldgate:apiToken --stack staging)" in text


def test_the_local_lines_are_unchanged(tmp_path, capsys):
    from goldgate.local.platform import LocalPlatform
    from goldgate.migrations import apply_sqlite

    db = LocalPlatform(tmp_path / "home").db_path("staging")
    db.parent.mkdir(parents=True)
    apply_sqlite(db)
    created = time.time() - 30 * 60
    with sqlite3.connect(db) as conn:
        conn.execute(_JOB, (WITH_ID, WITH_ID, "rp-d", iso_ms(created), int(created * 1000), iso_ms(created)))
    conn.close()
    assert main(["stuck", "staging", "--home", str(tmp_path / "home"), "--json", "--no-runpod"]) == 1
    job = json.loads(capsys.readouterr().out)["jobs"][0]
    assert job["recover"] == f"goldgate recover {WITH_ID} --stack staging" and job["recover_by_hand"] is None
