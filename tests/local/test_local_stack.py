"""A local stack end to end: API -> RunPod emulator -> real SDK loop + real handler -> webhook -> result."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from processes import wait_until
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE, ensure_up
from goldgate.errors import SpecError, StateError
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.runpod.control import ControlPlaneClient


def api(platform: LocalPlatform, stack: str) -> httpx.Client:
    api_url = platform.require_running(stack)["api_url"]  # what `status` names, without its RunPod calls
    return httpx.Client(base_url=api_url, timeout=30,
                        headers={"Authorization": f"Bearer {platform.api_token(stack)}"})


def wait_terminal(client: httpx.Client, job_id: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/api/status/{job_id}").json()
        if body["status"] not in ("queued", "in_progress"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {body['status']} after {timeout_s} s")


def test_jobs_complete_through_webhooks_and_results_download(platform: LocalPlatform) -> None:
    status = ensure_up(platform, "staging")
    assert status.running and status.image and image_store.is_local_ref(status.image)
    with api(platform, "staging") as client:
        workflows = client.get("/api/workflows").json()["workflows"]
        assert {w["id"] for w in workflows} >= {"sdxl-txt2img"}
        jobs = [client.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                          "inputs": {"prompt": f"a red fox #{i}", "seed": i,
                                                                     "width": 512, "height": 512}})
                for i in range(3)]
        assert all(r.status_code == 202 for r in jobs), [r.text for r in jobs]
        for created in jobs:
            body = wait_terminal(client, created.json()["job_id"])
            assert body["status"] == "completed", body
            assert body["worker_image_tag"] == status.image
            result = body["results"][0]
            image = client.get(result["url"])
            assert image.status_code == 200
            assert image.headers["content-type"] == "image/png"
            assert len(image.content) == result["bytes"] and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    # The outcome came by webhook (the service never polls RunPod): each job has a webhook delivery.
    db = sqlite3.connect(platform.db_path("staging"))
    ids = [r.json()["job_id"] for r in jobs]
    sources = db.execute(f"SELECT DISTINCT source FROM webhook_deliveries WHERE job_id IN "
                         f"({','.join('?' * len(ids))}) AND applied = 1", ids).fetchall()
    assert sources == [("webhook",)]
    metrics = db.execute("SELECT count(*), count(DISTINCT job_id) FROM job_metrics").fetchone()
    assert metrics[0] == metrics[1] >= 3


def test_up_is_idempotent_and_status_names_everything(home: Path) -> None:
    # A stack of its own that keeps one worker running: the shared one's workers go once idle (after 5 s).
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_min": 1}, staging={}))
    try:
        first = ensure_up(platform, "staging")
        again = platform.up("staging")
        assert again.api_url == first.api_url and again.endpoint_id == first.endpoint_id
        as_dict = again.to_dict()
        for key in ("api_url", "api_token_file", "webhook_secret_file", "runpod_api_base",
                    "runpod_endpoint_base", "runpod_api_key_file", "endpoint_id", "image", "workflow_version",
                    "logs_dir"):
            assert as_dict[key] not in (None, ""), key
        # Waited for with one control-plane client: each `status()` makes its own (an SSL context, ~50 ms of CPU),
        # and polled every 0.1 s that cost more than the stack. `status` then names what the control plane lists.
        with ControlPlaneClient(api_key=platform.runpod_api_key("staging"),
                                base_url=first.runpod_api_base) as runpod:
            assert wait_until(lambda: runpod.list_workers(first.endpoint_id).workers, 30), "RunPod lists no worker"
        status = platform.status("staging")
        assert status.workers, "status names no worker"
        assert [w["image"] for w in status.workers] == [status.image] * len(status.workers), status.workers
    finally:
        platform.down("staging")


def test_deploy_patches_the_same_endpoint_and_rolls_out(platform: LocalPlatform, tmp_path) -> None:
    before = ensure_up(platform, "staging")
    source = tmp_path / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write("\n# a change to the worker tree makes a new image\n")
    candidate = image_store.build_local_image(source, platform.home)
    assert candidate != before.image
    # The stack is left serving the candidate, a working image: each test after this one takes what the stack
    # serves as its `before` (a deploy back, one more service start and rollout, tested nothing).
    after = platform.deploy("staging", candidate)
    assert after.endpoint_id == before.endpoint_id
    assert after.image == candidate
    assert all(not w["is_stale"] for w in after.workers)
    with api(platform, "staging") as client:
        job = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "after deploy", "seed": 7}}
        created = client.post("/api/queue/create", json=job)
        body = wait_terminal(client, created.json()["job_id"])
    assert body["status"] == "completed" and body["worker_image_tag"] == candidate


def test_a_deploy_refuses_no_connection_while_the_service_is_replaced(platform: LocalPlatform, tmp_path) -> None:
    # A Worker deploy refuses no request. Locally the service process is replaced: a webhook RunPod sends in that
    # moment must be taken, not refused three times over and lost (its retries are seconds apart).
    before = ensure_up(platform, "staging")
    state_file = platform.home / "stacks" / "staging" / "state.json"
    service_pid = json.loads(state_file.read_text())["service_pid"]
    source = tmp_path / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write("\n# another release\n")
    candidate = image_store.build_local_image(source, platform.home)
    answers: list[int] = []
    refused: list[str] = []
    done = threading.Event()

    def knock() -> None:  # a new connection each time, as RunPod's webhook sender opens one
        # One client that keeps no connection alive: each request connects anew. (`httpx.get` made a client, and
        # an SSL context, per request: ~40 ms of CPU each, a core busy knocking for the whole deploy.)
        with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as fresh:
            while not done.is_set():
                try:
                    answers.append(fresh.get(f"{before.api_url}/healthz").status_code)
                except httpx.TransportError as exc:
                    refused.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.005)

    knocker = threading.Thread(target=knock)
    knocker.start()
    try:
        after = platform.deploy("staging", candidate)
    finally:
        done.set()
        knocker.join()
    # Left serving the candidate, as the test above leaves its own.
    assert after.image == candidate and json.loads(state_file.read_text())["service_pid"] != service_pid
    assert refused == [] and answers and set(answers) == {200}


def test_a_deploy_whose_service_cannot_start_keeps_the_old_one_serving_and_says_why(platform: LocalPlatform,
                                                                                       tmp_path) -> None:
    before = ensure_up(platform, "staging")
    source = tmp_path / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write("\n# a release altered after its build\n")
    candidate = image_store.build_local_image(source, platform.home)
    handler = image_store.resolve(candidate, platform.home) / "worker" / "handler.py"
    handler.write_text(handler.read_text() + "\n# altered after the build\n")  # what was built is not what would run
    # Failing fast and naming the cause, not waiting out the deploy's timeout with "did not pick up": the deploy
    # checks the snapshot before it moves the pin, and the host checks it again before it serves it.
    with pytest.raises(StateError, match=r"changed after the build"):
        platform.deploy("staging", candidate, timeout_s=600)
    status = platform.status("staging")
    assert status.running and status.image == before.image and platform.pinned_image("staging") == before.image
    with api(platform, "staging") as client:
        created = client.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                          "inputs": {"prompt": "after a failed deploy", "seed": 3}})
        body = wait_terminal(client, created.json()["job_id"])
    assert body["status"] == "completed" and body["worker_image_tag"] == before.image


def test_a_host_that_cannot_start_the_service_on_a_new_image_keeps_the_old_one_serving_and_says_why(
        platform: LocalPlatform, tmp_path, monkeypatch) -> None:
    """The snapshot altered between the deploy's check and the host's start (the deploy's check made a no-op here):
    the host refuses to serve it, keeps serving the old image, and the deploy says so at once."""
    before = ensure_up(platform, "staging")
    source = tmp_path / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write("\n# a release altered after its build, later\n")
    candidate = image_store.build_local_image(source, platform.home)
    handler = image_store.resolve(candidate, platform.home) / "worker" / "handler.py"
    handler.write_text(handler.read_text() + "\n# altered after the check\n")
    monkeypatch.setattr("goldgate.local.platform.image_store.resolve", lambda ref, home: None)
    with pytest.raises(StateError, match=r"could not start its service on .* still serves and stays pinned to "
                                         r".*changed after the build"):
        platform.deploy("staging", candidate, timeout_s=600)
    assert platform.pinned_image("staging") == before.image and platform.status("staging").image == before.image


def test_a_deploy_of_an_image_this_home_never_built_is_refused_before_the_pin_moves(platform: LocalPlatform) -> None:
    before = ensure_up(platform, "staging")
    unknown = "local/worker@sha256:" + "0" * 64
    said: list[str] = []
    with pytest.raises(StateError, match=r"no local worker image local/worker@sha256:0{64}.*build it first"):
        platform.deploy("staging", unknown, progress=said.append)
    assert said == []  # it said "pinned <unknown>; redeploying" and the host then refused it
    assert platform.pinned_image("staging") == before.image and platform.status("staging").image == before.image


def test_bad_requests_to_the_platform_are_clear(platform: LocalPlatform) -> None:
    with pytest.raises(SpecError, match="no stack named 'qa'"):
        platform.up("qa")
    with pytest.raises(StateError, match="deployed by digest"):
        platform.deploy("staging", "local/worker:latest")


def test_cli_status_json_and_one_line_errors(platform: LocalPlatform) -> None:
    up = ensure_up(platform, "staging")
    env_home = ["--home", str(platform.home)]
    shown = subprocess.run([sys.executable, "-m", "goldgate.cli", "status", "staging", "--json", *env_home],
                           check=False, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert (status["stack"], status["running"]) == ("staging", True), status
    assert (status["api_url"], status["image"]) == (up.api_url, up.image), status
    assert httpx.get(f"{status['api_url']}/healthz", timeout=30).status_code == 200
    bad = subprocess.run([sys.executable, "-m", "goldgate.cli", "recover", "0" * 32, "--stack", "qa", *env_home],
                         check=False, capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("goldgate: error:") and len(bad.stderr.strip().splitlines()) == 1
    assert "qa" in bad.stderr  # the unknown stack is what is named, not the (valid) job id
    assert "Traceback" not in bad.stderr


def test_doctor_passes_on_the_stack_image_and_names_missing_models(platform: LocalPlatform, tmp_path) -> None:
    ensure_up(platform, "staging")
    ok = subprocess.run([sys.executable, "-m", "goldgate.cli", "doctor", "--stack", "staging",
                         "--home", str(platform.home)], check=False, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    empty = tmp_path / "models"
    empty.mkdir()
    bad = subprocess.run([sys.executable, "-m", "goldgate.cli", "doctor", "--model-root", str(empty)],
                         check=False, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "sd_xl_base_1.0.safetensors" in bad.stdout and str(empty) in bad.stdout


def test_demo_runs_every_workflow_and_saves_its_images_under_the_home(platform: LocalPlatform, tmp_path,
                                                                      monkeypatch, capsys) -> None:
    ensure_up(platform, "staging")
    monkeypatch.chdir(tmp_path)
    code = main(["demo", "--stack", "staging", "--home", str(platform.home), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["all_completed"], summary
    files = [f for job in summary["jobs"] for f in job["files"]]
    assert len(summary["jobs"]) >= 2 and files
    for f in files:
        assert f.startswith(str(platform.home / "demo-results")) and Path(f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / ".goldgate").exists()  # nothing lands in the directory the command ran from
