"""A client's cancel on a real local stack: a job held by a slow render (the ComfyUI emulator's
COMFY_EMULATOR_RENDER_S, through endpoint.env) is cancelled with `goldgate cancel`; RunPod's worker withdraws
it (its `job_cancelled` line) and leaves no result object, the status reads `cancelled`, a webhook after
that changes nothing, and `goldgate metrics` counts the job and not as an error."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import boto3
import httpx
from ci_policy import needs
from processes import wait_until
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.runpod.jobs import DataPlaneClient
from service.signing import webhook_signature

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

STACK = "staging"


def _worker_lines(logs_dir: Path) -> list[dict[str, Any]]:
    lines = []
    for path in logs_dir.glob("worker-*.log"):
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


def _result_keys(platform: LocalPlatform, job_id: str) -> list[str]:
    state = platform.require_running(STACK)
    d = StackDir(platform.home, STACK)
    s3 = boto3.client(
        "s3",
        endpoint_url=state["s3_endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id=d.secret("s3_access_key_id"),
        aws_secret_access_key=d.secret("s3_secret_access_key"),
    )
    listed = s3.list_objects_v2(Bucket=platform.spec(STACK).storage.bucket, Prefix=f"results/{job_id}/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_running_job_cancelled_with_goldgate_cancel_stops_and_stays_cancelled(home, capsys):
    platform = LocalPlatform(
        home,
        stacks_file(
            home,
            endpoint={"workers_max": 1, "env": {"COMFY_EMULATOR_RENDER_S": "300"}},
            staging={"webhook_retry_delay_s": 0.2},
        ),
    )
    StackDir(home, STACK).pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up(STACK, timeout_s=90)
    try:
        status = platform.status(STACK)
        api = httpx.Client(
            base_url=status.api_url,
            timeout=30,
            headers={"Authorization": f"Bearer {platform.api_token(STACK)}"},
        )
        runpod = DataPlaneClient(
            platform.runpod_api_key(STACK), status.endpoint_id, base_url=status.runpod_endpoint_base
        )
        created = api.post(
            "/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "stop"}}
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        runpod_job_id = api.get(f"/api/status/{job_id}").json()["runpod_job_id"]
        logs_dir = StackDir(home, STACK).logs_dir
        # the worker has taken it and ComfyUI renders it (for 300 s): GPU time is being spent
        assert wait_until(lambda: runpod.status(runpod_job_id).status == "IN_PROGRESS", 90)
        assert wait_until(lambda: any(ln.get("event") == "job_started" for ln in _worker_lines(logs_dir)), 30)

        capsys.readouterr()
        assert main(["cancel", job_id, "--stack", STACK, "--home", str(home)]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{job_id}: cancelled (applied)"), out
        assert runpod.status(runpod_job_id).status == "CANCELLED"
        view = api.get(f"/api/status/{job_id}").json()
        assert (view["status"], view["results"]) == ("cancelled", []), view

        # RunPod stops the worker's job: it withdraws the prompt, logs why, and stores nothing
        assert wait_until(
            lambda: [ln for ln in _worker_lines(logs_dir) if ln.get("event") == "job_cancelled"], 60
        ), "the worker never logged job_cancelled"
        [cancelled] = [ln for ln in _worker_lines(logs_dir) if ln.get("event") == "job_cancelled"]
        assert (cancelled["job_id"], cancelled["runpod_job_id"], cancelled["level"]) == (
            job_id,
            runpod_job_id,
            "warning",
        )
        assert _result_keys(platform, job_id) == []

        # cancelling again: answered as it stands, RunPod not asked
        capsys.readouterr()
        assert main(["cancel", job_id, "--stack", STACK, "--home", str(home), "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert (again["cancelled"], again["reason"], again["status"]) == (False, "already_ended", "cancelled")

        # a webhook that comes after the cancel (signed for the job, as RunPod's would be) changes nothing
        late = {
            "id": runpod_job_id,
            "status": "COMPLETED",
            "delayTime": 5,
            "executionTime": 900,
            "output": {"images": []},
        }
        sig = webhook_signature(platform.webhook_secret(STACK), job_id)
        answer = httpx.post(
            f"{status.api_url}/api/runpod/webhook?job={job_id}&sig={sig}", json=late, timeout=30
        )
        assert answer.status_code == 200 and answer.json()["reason"] == "terminal_conflict", answer.text
        assert api.get(f"/api/status/{job_id}").json()["status"] == "cancelled"

        # the service's own record: applied by the cancel, one line saying so
        service_lines = [json.loads(ln) for ln in (logs_dir / "service.jsonl").read_text().splitlines() if ln]
        [finished] = [
            ln for ln in service_lines if ln["event"] == "job.finished" and ln.get("job_id") == job_id
        ]
        assert (finished["status"], finished["data"]["source"]) == ("cancelled", "cancel")
        assert platform.runpod_api_key(STACK) not in (logs_dir / "service.jsonl").read_text()
        with contextlib.closing(sqlite3.connect(StackDir(home, STACK).db_path)) as db:
            recorded = db.execute(
                "SELECT source, runpod_status, outcome FROM webhook_deliveries WHERE job_id = ? "
                "ORDER BY received_at",
                (job_id,),
            ).fetchall()
        assert recorded == [("cancel", "CANCELLED", "applied"), ("webhook", "COMPLETED", "terminal_conflict")]

        # the metrics count it, and not as an error
        capsys.readouterr()
        assert main(["metrics", STACK, "--home", str(home), "--json"]) == 0
        overall = json.loads(capsys.readouterr().out)["overall"]
        assert (overall["count"], overall["completed"], overall["errors"], overall["error_rate"]) == (
            1,
            0,
            0,
            0,
        )
        # it ran on a GPU until it was stopped: its run time (RunPod's /status, read once by the cancel) and cost
        with contextlib.closing(sqlite3.connect(StackDir(home, STACK).db_path)) as conn:
            run_ms, usd = conn.execute("SELECT runpod_run_duration_ms, cost_estimate_usd FROM job_metrics "
                                       "WHERE job_id = ?", (job_id,)).fetchone()
        assert run_ms is not None and run_ms > 0 and usd is not None and usd > 0, (run_ms, usd)
        runpod.close()
        api.close()
    finally:
        platform.down(STACK)
