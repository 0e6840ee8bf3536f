"""`goldgate stuck` names the client whose token created each stuck job (jobs.client, migration 0010): a runaway
client's stuck jobs are told apart from the others' (an on-call drill found nothing in stuck said whose they were).
`goldgate cancel --all-queued --client NAME` adds, when nothing matches and no job ever named that client, that the
name is likely misspelt."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from test_review16_stuck_cli import _db, _job

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


def _with_clients(db: Path, clients: dict[str, str | None]) -> None:
    with sqlite3.connect(db) as conn:
        for job_id, client in clients.items():
            conn.execute("UPDATE jobs SET client = ? WHERE id = ?", (client, job_id))
    conn.close()


def test_stuck_names_each_jobs_client_in_text_and_json(tmp_path, capsys):
    home, now = tmp_path / "home", time.time()
    db = _db(LocalPlatform(home).db_path("staging"),
             [_job("a" * 32, "queued", 3 * 3600, now), _job("b" * 32, "queued", 2 * 3600, now)])
    _with_clients(db, {"a" * 32: "batch", "b" * 32: None})
    assert main(["stuck", "staging", "--home", str(home), "--json"]) == 1
    jobs = {j["id"]: j for j in json.loads(capsys.readouterr().out)["jobs"]}
    assert jobs["a" * 32]["client"] == "batch" and jobs["b" * 32]["client"] is None
    assert main(["stuck", "staging", "--home", str(home)]) == 1
    lines = capsys.readouterr().out.splitlines()
    job_a = next(line for line in lines if line.startswith(f"  {'a' * 32}"))
    job_b = next(line for line in lines if line.startswith(f"  {'b' * 32}"))
    assert job_a.endswith("  client batch"), job_a
    assert "client" not in job_b, job_b


def test_cancel_by_a_client_no_job_ever_named_says_the_name_may_be_misspelt(tmp_path, capsys):
    home, now = tmp_path / "home", time.time()
    db = _db(LocalPlatform(home).db_path("staging"),
             [_job("a" * 32, "queued", 60, now), _job("b" * 32, "cancelled", 60, now)])
    _with_clients(db, {"a" * 32: "web", "b" * 32: "batch"})
    for name, seen in (("batch", True), ("bacth", False)):
        assert main(["cancel", "--all-queued", "--stack", "staging", "--client", name, "--home", str(home)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("staging: no job to cancel"), out
        assert ("no job there, ended or not, was created by client bacth" in out) is not seen, out
        assert main(["cancel", "--all-queued", "--stack", "staging", "--client", name, "--home", str(home),
                     "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["client_seen"] is seen
