"""`goldgate jobs <stack>` on a real local STAGING: the operator's view of GET /api/jobs, read with the stack's API
token as `goldgate cancel` reaches the API. Before it, an operator had no command for a stack's jobs: `goldgate stuck`
reads the database for the jobs in flight only.

Two jobs are created through the API (one with a named client's token, one with the API token); the volume a walk
needs (pages that a status filter leaves empty, the page bound) is written straight into the stack's database, in
years long past, so each listing picks its part with --created-after."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from ci_policy import needs
from processes import kill_everything_naming
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.jobs import PAGE_SIZE
from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from service import joblist
from service.jobs import NewJob, insert_statement

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

STACK = "staging"
SDXL = "sdxl-txt2img"
FAILED_AT = datetime(2024, 1, 1, tzinfo=UTC).timestamp()  # 2 failed jobs, then 450 completed ones after them
BULK_AT = datetime(2021, 1, 1, tzinfo=UTC).timestamp()  # 10,100 completed jobs: past the walk's bound
TIMED_OUT_AT = datetime(2020, 6, 1, tzinfo=UTC).timestamp()  # the one timed_out job, older than every bulk job
SINCE_2024 = "2023-12-31T00:00:00Z"


def _rows(db: sqlite3.Connection, prefix: str, start: float, n: int, status: str, client: str | None = None) -> list[str]:
    """`n` jobs written as the service writes them, a second apart from `start`, newest last; ids sort as times."""
    ids = []
    for i in range(n):
        job_id = f"{prefix}{i:030x}"
        statement = insert_statement(NewJob(id=job_id, stack=STACK, workflow_id=SDXL, workflow_version="v1",
                                            inputs={"prompt": "p"}, trace_id=f"{i:032x}", created_at_s=start + i,
                                            worker_image_tag=None, client=client))
        db.execute(statement.sql, statement.params)
        ids.append(job_id)
    if status != "queued":
        db.executemany("UPDATE jobs SET status = ?, finished_at = updated_at WHERE id = ?", [(status, i) for i in ids])
    return ids


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("jobscli") / "home"
    home.mkdir()
    platform = LocalPlatform(home, stacks_file(home))
    try:
        assert main(["client", "add", "team-a", "--stack", STACK, "--home", str(home)]) == 0
        team_a = (home / "stacks" / STACK / "secrets" / "clients" / "team-a").read_text().strip()
        ensure_up(platform, STACK)
        made = {}
        api_url = platform.require_running(STACK)["api_url"]
        for who, token in (("team-a", team_a), ("operator", platform.api_token(STACK))):
            with httpx.Client(base_url=api_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
                answer = http.post("/api/queue/create", json={"workflow_id": SDXL, "inputs": {"prompt": who}})
                assert answer.status_code == 202, answer.text
                made[who] = answer.json()["job_id"]
        with contextlib.closing(sqlite3.connect(StackDir(home, STACK).db_path, timeout=30)) as db, db:
            failed = _rows(db, "f", FAILED_AT, 2, "failed", client="team-b")
            completed = _rows(db, "c", FAILED_AT + 10, 450, "completed")
            _rows(db, "b", BULK_AT, 10_100, "completed")
            timed_out = _rows(db, "t", TIMED_OUT_AT, 1, "timed_out")
        yield {"platform": platform, "home": str(home), "api_url": api_url, "made": made, "failed": failed,
               "completed": completed, "timed_out": timed_out}
    finally:
        platform.down(STACK)
        kill_everything_naming(str(home))


def _jobs(stack: dict[str, Any], capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    try:
        code = main(["jobs", *argv, "--home", stack["home"]])
    except SystemExit as exc:  # a usage error
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, json.loads(out) if "--json" in argv and code == 0 else out, err


def test_the_stacks_newest_jobs_are_a_table_with_their_client_and_a_last_line_saying_more_exist(stack, capsys):
    code, out, err = _jobs(stack, capsys, STACK, "--limit", "2")
    assert code == 0, err
    header, operator, team_a, last = out.splitlines()
    assert header.split() == ["JOB_ID", "STATUS", "WORKFLOW", "CLIENT", "CREATED", "FINISHED"]
    # newest first: the API token's job was created second; its client is "-"
    assert operator.split()[:4] == [stack["made"]["operator"], operator.split()[1], SDXL, "-"]
    assert team_a.split()[0] == stack["made"]["team-a"] and team_a.split()[3] == "team-a"
    assert operator.split()[1] in ("queued", "in_progress", "completed")
    assert last.startswith("2 jobs shown, newest first; the list goes on: raise --limit (at most 1000)"), last


def test_client_lists_that_clients_jobs_only_and_json_has_the_jobs_more_and_next_cursor(stack, capsys):
    code, listed, err = _jobs(stack, capsys, STACK, "--client", "team-a", "--json")
    assert code == 0, err
    assert sorted(listed) == ["jobs", "more", "next_cursor"]
    assert [j["job_id"] for j in listed["jobs"]] == [stack["made"]["team-a"]]
    assert listed["jobs"][0]["client"] == "team-a" and listed["jobs"][0]["workflow_id"] == SDXL
    assert (listed["more"], listed["next_cursor"]) == (False, None)
    code, out, _ = _jobs(stack, capsys, STACK, "--client", "team-a")
    assert code == 0 and out.endswith(f"1 job shown, newest first; no more on {STACK}\n"), out
    code, out, _ = _jobs(stack, capsys, STACK, "--client", "nobody")
    assert (code, out) == (0, f"no job on {STACK} matches\n")


def test_a_status_filter_reads_on_past_pages_that_show_nothing(stack, capsys):
    # the 450 completed jobs fill the first pages of 200: they show none of the 2 failed ones below them
    code, listed, err = _jobs(stack, capsys, STACK, "--status", "failed", "--created-after", SINCE_2024, "--json")
    assert code == 0, err
    assert [j["job_id"] for j in listed["jobs"]] == stack["failed"][::-1]
    assert {j["status"] for j in listed["jobs"]} == {"failed"} and (listed["more"], listed["next_cursor"]) == (
        False, None)
    # a page holding more matches than --limit is cut: more, and no cursor that would skip the rest
    code, listed, _ = _jobs(stack, capsys, STACK, "--status", "failed,timed_out", "--created-after", SINCE_2024,
                            "--limit", "1", "--json")
    assert code == 0 and [j["job_id"] for j in listed["jobs"]] == [stack["failed"][1]]
    assert (listed["more"], listed["next_cursor"]) == (True, None)


def test_limit_shows_that_many_and_the_cursor_goes_on_from_the_last_one_shown(stack, capsys):
    code, listed, err = _jobs(stack, capsys, STACK, "--created-after", SINCE_2024, "--limit", "203", "--json")
    assert code == 0, err
    newest = stack["completed"][::-1] + stack["failed"][::-1]
    assert [j["job_id"] for j in listed["jobs"]] == list(stack["made"].values())[::-1] + newest[:201]
    assert listed["more"] is True and listed["next_cursor"]
    # the API's own next page from there starts at the job after the last one shown: none is skipped
    with httpx.Client(base_url=stack["api_url"], timeout=30,
                      headers={"Authorization": f"Bearer {stack['platform'].api_token(STACK)}"}) as http:
        page = http.get("/api/jobs", params={"created_after": SINCE_2024, "limit": "1",
                                             "cursor": listed["next_cursor"]}).json()
    assert [j["job_id"] for j in page["jobs"]] == [newest[201]]


def test_a_walk_stops_at_its_bound_and_says_how_to_narrow_it(stack, capsys):
    assert PAGE_SIZE == joblist.MAX_LIMIT  # each page asks for the most the API serves: 50 pages read 10,000 jobs
    # the one timed_out job is below 10,552 others: 50 pages of 200 show nothing and the walk stops
    code, out, err = _jobs(stack, capsys, STACK, "--status", "timed_out")
    assert code == 0, err
    assert out == (f"0 jobs shown, newest first; stopped after reading 10000 jobs of {STACK}: narrow with "
                   "--created-after\n")
    code, listed, _ = _jobs(stack, capsys, STACK, "--status", "timed_out", "--json")
    assert code == 0 and listed["jobs"] == [] and listed["more"] is True and listed["next_cursor"]
    code, listed, _ = _jobs(stack, capsys, STACK, "--status", "timed_out", "--created-after", "2020-01-01", "--json")
    assert code == 0 and listed["more"] is True  # still past the bound: the bulk lies between
    code, listed, _ = _jobs(stack, capsys, STACK, "--status", "timed_out", "--client", "team-b", "--json")
    assert code == 0 and listed == {"jobs": [], "more": False, "next_cursor": None}


@pytest.mark.parametrize(("argv", "code", "said"), [
    (["--status", "queued,done"], 2, "argument --status: 'done' is not a job status: give one or more of queued, "),
    (["--status", ""], 2, "argument --status: is empty or blank"),
    (["--created-after", "yesterday"], 2, "argument --created-after: must be an ISO 8601 time"),
    (["--limit", "0"], 2, "argument --limit: '0' is not a job count from 1 to 1000"),
    (["--limit", "1001"], 2, "argument --limit: '1001' is not a job count from 1 to 1000"),
    (["--client", "Team A"], 2, "argument --client: 'Team A' is not a client name"),
], ids=["status", "blank-status", "time", "limit-0", "limit-1001", "client"])
def test_bad_input_is_one_error_line_and_a_non_zero_exit(stack, capsys, argv, code, said):
    got, out, err = _jobs(stack, capsys, STACK, *argv)
    errors = [line for line in err.splitlines() if "error:" in line]
    assert (got, out) == (code, "") and len(errors) == 1 and said in errors[0], err


def test_an_unknown_stack_and_a_stack_that_is_down_are_one_line_each(stack, capsys, tmp_path):
    code, out, err = _jobs(stack, capsys, "nosuch")
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert "no stack named 'nosuch' (stacks: prod, staging)" in err
    capsys.readouterr()
    code = main(["jobs", STACK, "--home", str(tmp_path / "elsewhere")])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert f"stack {STACK} is not up" in err and f"`goldgate up {STACK}`" in err
