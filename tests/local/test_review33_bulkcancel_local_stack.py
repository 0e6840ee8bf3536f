"""A runaway client's jobs stopped with one command: `goldgate cancel --all-queued|--all-active --stack S` on a real
local STAGING whose one worker is held on a job (the ComfyUI emulator's render gate, never opened), so every later job
waits in RunPod's queue, as a runaway's would. The ids are read from the stack's database (its SQLite, or a D1 with
--target cloud), and each job is cancelled through the stack's API, as `goldgate cancel <job_id>` cancels one. Before,
each of thousands of jobs took a command of its own."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from ci_policy import needs
from processes import kill_everything_naming, wait_until
from stackfiles import stacks_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))  # the D1 stand-in `stuck --target cloud` uses
from ops_fixtures import migrated_d1

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.runpod.jobs import DataPlaneClient
from service.signing import webhook_signature

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

REPO = Path(__file__).resolve().parents[2]
STACK = "staging"
SDXL, FLUX = "sdxl-txt2img", "flux-schnell-lora"


def up_held_staging(tmp: Path) -> LocalPlatform:
    """STAGING up with one worker, which holds the first job it takes (its prompt renders until interrupted)."""
    home, gate = tmp / "home", tmp / "gate"
    home.mkdir()
    gate.mkdir()  # its `release` file is never made: a prompt renders until it is interrupted
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_max": 1,
                                                               "env": {"COMFY_EMULATOR_HOLD_DIR": str(gate)}},
                                               staging={"webhook_retry_delay_s": 0.5}))
    StackDir(home, STACK).pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up(STACK, timeout_s=90)
    return platform


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    """STAGING with one worker, held on the first job it takes: the jobs created after it stay queued."""
    platform = up_held_staging(tmp_path_factory.mktemp("bulkcancel"))
    try:
        held = _create(platform, SDXL, "the job the worker holds")
        rid = _view(platform, held)["runpod_job_id"]
        status = platform.status(STACK)
        with DataPlaneClient(platform.runpod_api_key(STACK), status.endpoint_id,
                             base_url=status.runpod_endpoint_base) as runpod:
            assert wait_until(lambda: runpod.status(rid).status == "IN_PROGRESS", 90), "no worker took the job"
        # The service learns a job runs from a recovery only (RunPod sends no webhook until a job ends)
        assert main(["recover", held, "--stack", STACK, "--home", str(platform.home)]) == 0
        assert _status(platform, held) == "in_progress"
        yield platform
    finally:
        platform.down(STACK)
        kill_everything_naming(str(platform.home))


def _api(platform: LocalPlatform) -> httpx.Client:
    return httpx.Client(base_url=platform.status(STACK).api_url, timeout=30,
                        headers={"Authorization": f"Bearer {platform.api_token(STACK)}"})


def _create(platform: LocalPlatform, workflow: str, prompt: str) -> str:
    with _api(platform) as api:
        created = api.post("/api/queue/create", json={"workflow_id": workflow, "inputs": {"prompt": prompt}})
    assert created.status_code == 202, created.text
    return created.json()["job_id"]


def _view(platform: LocalPlatform, job_id: str) -> dict[str, Any]:
    with _api(platform) as api:
        return api.get(f"/api/status/{job_id}").json()


def _status(platform: LocalPlatform, job_id: str) -> str:
    return _view(platform, job_id)["status"]


def _db_statuses(platform: LocalPlatform, ids: list[str]) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(StackDir(platform.home, STACK).db_path)) as db:
        rows = db.execute(f"SELECT id, status FROM jobs WHERE id IN ({', '.join('?' * len(ids))})", ids).fetchall()
    return dict(rows)


def _now() -> str:
    """A moment between two creates: the service stamps created_at to the millisecond, on this machine's clock."""
    time.sleep(0.05)
    moment = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.05)
    return moment


def _cancel(platform: LocalPlatform, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(["cancel", "--stack", STACK, "--home", str(platform.home), *argv])
    out = capsys.readouterr().out
    return code, json.loads(out) if "--json" in argv else out


def test_a_runaway_is_listed_then_cancelled_with_one_command_and_nothing_else_is_touched(stack, capsys):
    before_window = _create(stack, SDXL, "before the runaway")
    window = _now()
    runaway = [_create(stack, SDXL, f"runaway {n}") for n in range(4)]
    other_workflow = _create(stack, FLUX, "another client")
    untouched = [before_window, other_workflow]
    selection = ["--all-queued", "--workflow", SDXL, "--created-after", window]

    # without --yes: the jobs are listed, per workflow, with the command that cancels them; nothing is cancelled
    code, text = _cancel(stack, capsys, *selection)
    assert code == 2, text
    assert text.startswith(f"{STACK}: 4 jobs to cancel (local: queued, workflow {SDXL}, created at or after {window})")
    assert f"  {SDXL}  4\n" in text
    assert (f"nothing was cancelled: add --yes to cancel them: goldgate cancel --all-queued --stack {STACK} "
            f"--workflow {SDXL} --created-after {window} --yes") in text
    assert set(_db_statuses(stack, runaway + untouched).values()) == {"queued"}

    code, preview = _cancel(stack, capsys, *selection, "--json")
    assert code == 2
    assert (preview["acted"], preview["matched"], preview["selected"], preview["left"]) == (False, 4, 4, 0)
    assert preview["by_workflow"] == {SDXL: 4}
    assert [j["job_id"] for j in preview["jobs"]] == runaway  # oldest first: the next a free worker would take
    assert {j["outcome"] for j in preview["jobs"]} == {"selected"}

    code, done = _cancel(stack, capsys, *selection, "--yes", "--json")
    assert code == 0, done
    assert (done["acted"], done["cancelled"], done["ended"], done["failed"], done["not_sent"]) == (True, 4, 0, 0, 0)
    assert sorted(done) == sorted(["stack", "target", "selection", "order", "matched", "selected", "left",
                                   "by_workflow", "by_client", "acted", "command", "cancelled", "ended", "failed",
                                   "not_sent", "client_seen",
                                   "interrupted", "stopped", "jobs"])
    assert done["selection"] == {"statuses": ["queued"], "workflow_id": SDXL, "created_after": window,
                                 "created_before": None, "limit": 2000, "client": None}
    for job in done["jobs"]:
        assert (job["outcome"], job["status"], job["status_before"], job["workflow_id"], job["attempts"],
                job["retry"]) == ("cancelled", "cancelled", "queued", SDXL, 1, None), job
    assert _db_statuses(stack, runaway) == dict.fromkeys(runaway, "cancelled")
    assert {_status(stack, job_id) for job_id in runaway} == {"cancelled"}
    # the job created before the window, and the other workflow's, still wait
    assert _db_statuses(stack, untouched) == dict.fromkeys(untouched, "queued")

    # the same command again: nothing left to cancel, and it says so
    code, text = _cancel(stack, capsys, *selection, "--yes")
    assert (code, text) == (0, (f"{STACK}: no job to cancel (local: none queued, workflow {SDXL}, created at or "
                               f"after {window})\n"))


def test_all_active_takes_the_job_on_a_gpu_first_and_limit_leaves_the_rest_counted(stack, capsys):
    window = _now()
    queued = [_create(stack, FLUX, f"flux {n}") for n in range(3)]
    code, preview = _cancel(stack, capsys, "--all-active", "--limit", "2", "--json")
    assert code == 2
    held = [j for j in preview["jobs"] if j["status_before"] == "in_progress"]
    assert preview["jobs"][0] == held[0] and len(preview["jobs"]) == 2, preview["jobs"]
    assert preview["left"] == preview["matched"] - 2 > 0

    code, text = _cancel(stack, capsys, "--all-active", "--created-after", window, "--limit", "2", "--yes")
    assert code == 0, text
    assert text.startswith(f"{STACK}: 2 cancelled, 0 had already ended, 0 failed, of 2 jobs selected (local: queued "
                           f"or in progress, created at or after {window})"), text
    assert "  1 more job matches past --limit 2, not selected: run the command again" in text
    assert _db_statuses(stack, queued) == {queued[0]: "cancelled", queued[1]: "cancelled", queued[2]: "queued"}


def test_what_is_no_selection_is_refused_in_one_line_before_anything_is_read(stack, capsys, tmp_path):
    job = _create(stack, FLUX, "not to be cancelled by a refused command")
    home = str(stack.home)
    for argv, said in (([job, "--all-queued"], "a job id and --all-queued both say which jobs to cancel"),
                       ([job, "--workflow", SDXL], "a job id and --workflow both say which jobs to cancel"),
                       ([], "select jobs with --all-queued or --all-active"),
                       (["--created-after", "2026-01-01T00:00:00Z"], "--created-after narrows a selection"),
                       (["--all-queued", "--created-after", "2026-02-01", "--created-before", "2026-01-01"],
                        "is not before --created-before")):
        capsys.readouterr()
        assert main(["cancel", *argv, "--stack", STACK, "--home", home]) == 1, argv
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1 and said in captured.err, (argv, captured.err)

    with pytest.raises(SystemExit) as usage:
        main(["cancel", "--all-queued", "--created-after", "yesterday", "--stack", STACK, "--home", home])
    assert usage.value.code == 2
    assert "argument --created-after: must be an ISO 8601 time" in capsys.readouterr().err

    assert main(["cancel", "--all-queued", "--stack", "stagin", "--home", home, "--yes"]) == 1
    err = capsys.readouterr().err
    assert "no stack named 'stagin'" in err and err.count("\n") == 1
    assert main(["cancel", "--all-queued", "--stack", STACK, "--home", str(tmp_path / "elsewhere"), "--yes"]) == 1
    assert "was never brought up under this state dir" in capsys.readouterr().err
    assert _db_statuses(stack, [job]) == {job: "queued"}


def test_the_cloud_reads_the_ids_from_d1_and_cancels_through_the_stacks_api(stack, capsys, tmp_path, monkeypatch):
    from goldgate.release.deployers.cloud import CloudDeployer
    from goldgate.release.golden import ApiAccess

    token = "cf-bulkcancel-token-0123456789"
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", token)
    # The cloud stack's API is this local stack's service; its Pulumi outputs (`api_url`) stand in by that value.
    access = ApiAccess(api_url=stack.status(STACK).api_url, token=stack.api_token(STACK))
    monkeypatch.setattr(CloudDeployer, "api_access", lambda self, name: access)
    jobs = [_create(stack, SDXL, f"cloud {n}") for n in range(2)]
    with contextlib.closing(sqlite3.connect(StackDir(stack.home, STACK).db_path)) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM jobs WHERE id IN (?, ?)", jobs)]
    with migrated_d1(token) as (standin, d1, database):
        for row in rows:  # the D1 holds the cloud stack's jobs: these two, queued
            d1.query(database, f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                     list(row.values()))
        argv = ["--all-queued", "--target", "cloud", "--database-id", database, "--account-id",
                standin.account_id, "--api-base", standin.api_base, "--json"]
        code, preview = _cancel(stack, capsys, *argv)
        assert code == 2 and [j["job_id"] for j in preview["jobs"]] == jobs, preview
        assert preview["target"] == "cloud" and "--target cloud --database-id" in preview["command"]
        code, done = _cancel(stack, capsys, *argv, "--yes")
    assert code == 0, done
    assert (done["cancelled"], done["failed"]) == (2, 0)
    assert _db_statuses(stack, jobs) == dict.fromkeys(jobs, "cancelled")
    assert token not in json.dumps(done)


def _service_lines(platform: LocalPlatform) -> list[dict[str, Any]]:
    path = StackDir(platform.home, STACK).logs_dir / "service.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _cancel_failures(platform: LocalPlatform, job_id: str) -> list[dict[str, Any]]:
    return [ln for ln in _service_lines(platform) if ln.get("event") == "job.cancel_failed" and
            ln.get("job_id") == job_id]


@contextlib.contextmanager
def _runpod_cancel_budget_spent(platform: LocalPlatform) -> Iterator[None]:
    """RunPod's per-endpoint /cancel rate limit (100 per 10 s) kept spent by other cancels, as another client's loop
    would: every cancel the service sends meanwhile is answered 429, which the service answers 503 with Retry-After."""
    state = platform.require_running(STACK)
    url = f"{state['runpod_endpoint_base']}/{state['endpoint_id']}/cancel/no-such-job"
    headers = {"Authorization": f"Bearer {platform.runpod_api_key(STACK)}"}
    spent, stop = threading.Event(), threading.Event()

    def spend() -> None:
        with httpx.Client(timeout=10, headers=headers) as client:
            while not stop.is_set():
                try:
                    refused = client.post(url).status_code == 429
                except httpx.HTTPError:  # a connection the emulator dropped: the next call takes the place
                    continue
                if refused:
                    spent.set()
                    stop.wait(0.002)

    thread = threading.Thread(target=spend, daemon=True)
    thread.start()
    try:
        assert spent.wait(30), "RunPod's /cancel limit was never reached"
        time.sleep(1)  # clear of the moment the spent budget's first calls leave the 10 s window
        yield
    finally:
        stop.set()
        thread.join(15)


def test_a_failing_cancel_is_retried_then_named_and_one_a_webhook_ended_is_not_a_failure(stack, capsys):
    window = _now()
    ends_meanwhile, fails = _create(stack, SDXL, "its webhook comes"), _create(stack, SDXL, "RunPod refuses")
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["code"] = main(["cancel", "--all-queued", "--created-after", window, "--stack", STACK, "--home",
                                str(stack.home), "--yes", "--json"])

    capsys.readouterr()
    with _runpod_cancel_budget_spent(stack):
        runner = threading.Thread(target=run)
        runner.start()
        assert wait_until(lambda: _cancel_failures(stack, ends_meanwhile), 30), "no cancel was sent"
        # RunPod ends the job meanwhile (its worker failed it) and its webhook is recorded before the retry
        rid = _view(stack, ends_meanwhile)["runpod_job_id"]
        sig = webhook_signature(stack.webhook_secret(STACK), ends_meanwhile)
        answer = httpx.post(f"{stack.status(STACK).api_url}/api/runpod/webhook?job={ends_meanwhile}&sig={sig}",
                            json={"id": rid, "status": "FAILED", "error": "worker lost", "delayTime": 5,
                                  "executionTime": 10}, timeout=30)
        assert answer.status_code == 200, answer.text
        runner.join(60)
    assert not runner.is_alive()
    done = json.loads(capsys.readouterr().out)
    assert outcome["code"] == 1, done
    assert (done["cancelled"], done["ended"], done["failed"], done["not_sent"]) == (0, 1, 1, 0), done
    by_id = {j["job_id"]: j for j in done["jobs"]}
    assert (by_id[ends_meanwhile]["outcome"], by_id[ends_meanwhile]["status"]) == ("ended", "failed")
    failed = by_id[fails]
    assert (failed["outcome"], failed["reason"], failed["attempts"]) == ("failed", "runpod_unavailable", 4), failed
    assert failed["message"].startswith("503 runpod_unavailable: RunPod answered HTTP 429")
    assert failed["retry"] == f"goldgate cancel {fails} --stack {STACK}"
    # each retry waited the Retry-After the service answered (5 s)
    times = [datetime.fromisoformat(ln["ts"]).timestamp() for ln in _cancel_failures(stack, fails)]
    assert len(times) == 4 and all(b - a >= 4.9 for a, b in itertools.pairwise(times)), times
    assert _status(stack, fails) == "queued"  # unchanged: the line retries it

    from goldgate.ops.bulk_cancel import render_text

    text = render_text(done)
    assert f"  FAILED {fails}: 503 runpod_unavailable: RunPod answered HTTP 429" in text
    assert f"\n      goldgate cancel {fails} --stack {STACK}" in text


def test_ctrl_c_stops_the_sending_and_prints_what_was_done_so_far(stack, tmp_path):
    window = _now()
    jobs = [_create(stack, FLUX, f"interrupted {n}") for n in range(6)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with _runpod_cancel_budget_spent(stack):
        proc = subprocess.Popen([sys.executable, "-m", "goldgate.cli", "cancel", "--all-queued", "--created-after",
                                 window, "--stack", STACK, "--home", str(stack.home), "--yes"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # four sent at once, each answered 503 and waiting its Retry-After: Ctrl-C then
            # (a bound for a loaded CI machine, where the command's start alone may take seconds; it returns at once)
            assert wait_until(lambda: all(_cancel_failures(stack, j) for j in jobs[:4]), 90), "no cancel was sent"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "interrupted: no more cancels are sent" in err, err
    # The service logs a refusal before its answer reaches the command: the fourth may still be on its way at the
    # Ctrl-C, and is then counted not sent. Either way every job is failed or not sent, and said so.
    counted = re.match(rf"{STACK}: 0 cancelled, 0 had already ended, (\d) failed, of 6 jobs selected", out)
    assert counted and int(counted.group(1)) in (3, 4), out
    assert "stopped before trying again)" in out
    assert f"  interrupted: {6 - int(counted.group(1))} jobs not sent; run the command again to cancel them" in out
    assert not [ln for ln in _service_lines(stack) if ln.get("job_id") in jobs[4:] and
                ln.get("event", "").startswith("job.cancel")]
    assert _db_statuses(stack, jobs) == dict.fromkeys(jobs, "queued")
