"""Chaos as an operator meets it on the local target, with real processes: `goldgate up` run twice at once,
workers killed mid-job, the service killed with jobs in flight, `goldgate down` while jobs run, a deploy while
jobs run. The tests that need a stack of their own (two `up`s at once, one worker, a full disk) start it in a
home of their own; those that start from a running stack share one (fixture `shared`). No process is left
behind.  A job that must be hit mid-run is held by the ComfyUI emulator's render gate
(COMFY_EMULATOR_HOLD_DIR) and released once the test has done its act: every wait is for a condition, never a
race against a render time."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from ci_policy import needs
from processes import kill_everything_naming, processes_naming, wait_until
from stackfiles import stacks_file

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform, StackStatus
from goldgate.local.state import StackDir
from goldgate.runpod.jobs import DataPlaneClient

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")


class _Gate:
    """The workers' render gate: while it is closed every prompt keeps rendering (its job IN_PROGRESS)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self.dir = directory

    def open(self) -> None:
        (self.dir / "release").touch()

    def close(self) -> None:
        """Prompts that start from now on are held (one already past the gate is not)."""
        (self.dir / "release").unlink(missing_ok=True)


@pytest.fixture
def gate(home: Path) -> _Gate:
    return _Gate(home / "render-gate")


def _platform(home: Path, workers_max: int = 2, gate: _Gate | None = None, sdk_debug: bool = False,
              **local: object) -> LocalPlatform:
    env = {"COMFY_EMULATOR_HOLD_DIR": str(gate.dir)} if gate else {}
    if sdk_debug:  # the SDK says at debug level when a worker gets its SIGTERM
        env["RUNPOD_LOG_LEVEL"] = "DEBUG"
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_max": workers_max, "env": env},
                                               staging={"webhook_retry_delay_s": 0.5, **local}))
    StackDir(home, "staging").pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    return platform


def _hosts(home: Path) -> list[int]:
    return [pid for pid, argv in processes_naming(str(home)).items() if "goldgate.local.stackhost" in argv]


def test_two_ups_at_once_bring_up_one_stack_and_both_report_it(home: Path) -> None:
    platform = _platform(home)
    try:
        with ThreadPoolExecutor(3) as pool:
            outcomes = list(pool.map(lambda _: _try(lambda: platform.up("staging", timeout_s=90)), range(3)))
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert not errors, errors
        assert len({o.api_url for o in outcomes}) == 1 and all(o.running for o in outcomes)
        assert len(_hosts(home)) == 1
        assert platform.status("staging").running
    finally:
        platform.down("staging")
    assert wait_until(lambda: not processes_naming(str(home)), 30), processes_naming(str(home))


def _try(call: Callable[[], StackStatus]) -> StackStatus | Exception:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 -- collected and asserted on by the test
        return exc


def _api(platform: LocalPlatform) -> httpx.Client:
    return httpx.Client(base_url=platform.status("staging").api_url, timeout=30,
                        headers={"Authorization": f"Bearer {platform.api_token('staging')}"})


def _submit(api: httpx.Client, seed: int) -> str:
    created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                   "inputs": {"prompt": f"chaos {seed}", "seed": seed,
                                                              "width": 512, "height": 512}})
    assert created.status_code == 202, created.text
    return created.json()["job_id"]


def _settled(api: httpx.Client, job_id: str, timeout_s: float = 90) -> dict:
    def done() -> dict | None:
        try:
            body = api.get(f"/api/status/{job_id}").json()
        except httpx.TransportError:  # the service is being restarted
            return None
        return body if body["status"] not in ("queued", "in_progress") else None

    assert wait_until(done, timeout_s, 0.2), f"job {job_id} did not settle within {timeout_s} s"
    return done()  # type: ignore[return-value]


def _runpod(platform: LocalPlatform) -> DataPlaneClient:
    status = platform.status("staging")
    return DataPlaneClient(platform.runpod_api_key("staging"), status.endpoint_id,
                           base_url=status.runpod_endpoint_base)


def _kill_the_worker_running(platform: LocalPlatform, runpod: DataPlaneClient, runpod_job_id: str) -> None:
    """SIGKILL the session of the worker process running the job, as the OOM killer or a lost host would."""
    assert wait_until(lambda: runpod.status(runpod_job_id).status == "IN_PROGRESS", 60)
    worker_id = runpod.status(runpod_job_id).worker_id
    leaders = [pid for pid, argv in processes_naming(str(platform.home)).items()
               if "goldgate.local.worker_process" in argv and os.getpgid(pid) == pid
               and _env(pid).get("RUNPOD_POD_ID") == worker_id]
    assert len(leaders) == 1, (worker_id, leaders)
    os.killpg(leaders[0], signal.SIGKILL)
    # The emulator has noticed once the job is no longer on that worker.
    assert wait_until(lambda: runpod.status(runpod_job_id).worker_id != worker_id
                      or runpod.status(runpod_job_id).status != "IN_PROGRESS", 30)


def _env(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(part.decode(errors="replace").partition("=")[::2] for part in raw.split(b"\0") if part)


def _delivery_sources(platform: LocalPlatform, job_id: str) -> list[str]:
    with sqlite3.connect(platform.db_path("staging")) as db:
        return [row[0] for row in db.execute("SELECT DISTINCT source FROM webhook_deliveries WHERE job_id = ? "
                                             "AND applied = 1", (job_id,))]


def _said_by_worker(platform: LocalPlatform, worker_id: str, message: str) -> bool:
    """Whether the worker's log has a line whose message starts with `message`."""
    try:
        log = StackDir(platform.home, "staging").logs_dir / f"worker-{worker_id}.log"
        lines = log.read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:  # the line being written
            continue
        if str(entry.get("message", "")).startswith(message):
            return True
    return False


def _down_releasing(platform: LocalPlatform, gate: _Gate, worker_id: str,
                    progress: Callable[[str], None] = lambda _: None) -> None:
    """`goldgate down` while the worker's job is held: the gate opens once that worker has its SIGTERM, so the
    job finishes in the worker's grace period (what down promises), after down has begun and not before."""
    with ThreadPoolExecutor(1) as pool:
        down: Future[None] = pool.submit(platform.down, "staging", progress)
        try:
            signalled = wait_until(lambda: _said_by_worker(platform, worker_id, "Received shutdown signal")
                                   or down.done(), 60)
        finally:
            gate.open()
        down.result()
    assert signalled and _said_by_worker(platform, worker_id, "Received shutdown signal"), \
        f"worker {worker_id} never said it got its SIGTERM while its job was held"


def test_down_names_the_jobs_it_leaves_unsettled_and_recover_settles_them_after_up(home: Path,
                                                                                   gate: _Gate) -> None:
    platform = _platform(home, workers_max=1, gate=gate, sdk_debug=True)
    said: list[str] = []
    try:
        platform.up("staging")
        runpod = _runpod(platform)
        with _api(platform) as api:
            job_ids = [_submit(api, seed) for seed in range(3)]
            first = api.get(f"/api/status/{job_ids[0]}").json()["runpod_job_id"]
            assert wait_until(lambda: runpod.status(first).status == "IN_PROGRESS", 60)
            worker_id = runpod.status(first).worker_id
        _down_releasing(platform, gate, worker_id, said.append)
        platform.up("staging")
        with _api(platform) as api:
            unsettled = [j for j in job_ids if api.get(f"/api/status/{j}").json()["status"] in ("queued", "in_progress")]
            assert set(job_ids[1:]) <= set(unsettled), \
                "one worker, its first job held until down: the other two were still queued at down"
            warning = [line for line in said if "recover" in line]
            assert len(warning) == 1 and all(j in warning[0] for j in unsettled), said
            for job_id in unsettled:
                recovered = api.post(f"/api/admin/recover/{job_id}")
                assert recovered.status_code == 200, recovered.text
                assert api.get(f"/api/status/{job_id}").json()["status"] == "failed"
    finally:
        gate.open()
        platform.down("staging")


def _disk_full() -> None:
    """In the child: no file may grow (EFBIG where a full disk says ENOSPC), and growing one is no signal."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_up_on_a_full_state_dir_says_so_in_one_line_and_leaves_nothing_running(home: Path) -> None:
    platform = _platform(home)
    StackDir(home, "staging").ensure()
    done = subprocess.run([sys.executable, "-m", "goldgate.cli", "up", "staging", "--home", str(home)],
                          check=False, capture_output=True, text=True, timeout=120, preexec_fn=_disk_full,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("goldgate: error:") and "Traceback" not in done.stderr, done.stderr
    assert "not writable" in error and str(StackDir(home, "staging").root) in error, error
    assert not platform.status("staging").running
    assert processes_naming(str(home)) == {}


# The tests below each start from a running stack (two workers, the render gate) and leave it running with
# every job they submitted settled and the gate open: one stack, started by the first of them, serves them
# all, in one home (--dist loadfile keeps this file in one worker, in this order). Each one's own stops and
# kills (down and up, a worker, the service, the host killed) are still done to it, and each asserts on its
# own jobs only. Starting a stack per test (a host, its object store, RunPod emulator and service, then its
# workers' cold starts) was most of this file's CPU.
@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPlatform, _Gate]]:
    home = tmp_path_factory.mktemp("shared") / "home"
    home.mkdir()
    gate = _Gate(home / "render-gate")
    # sdk_debug: the down test among them reads a worker's SIGTERM in its log (the SDK says it at debug level
    # only)
    platform = _platform(home, gate=gate, sdk_debug=True)
    try:
        yield platform, gate
    finally:
        gate.open()
        try:
            platform.down("staging")
        finally:
            kill_everything_naming(str(home))


@pytest.fixture
def running(shared: tuple[LocalPlatform, _Gate]) -> Iterator[tuple[LocalPlatform, _Gate]]:
    """The shared stack, up (started by the first test, or again after one that failed left it down), with its
    gate closed as a fresh one's is; the gate is opened again when the test ends, as each test's own `finally`
    did."""
    platform, gate = shared
    gate.close()
    try:
        platform.up("staging")
        yield platform, gate
    finally:
        gate.open()


def test_results_survive_down_and_up_as_the_jobs_that_name_them_do(
        running: tuple[LocalPlatform, _Gate]) -> None:
    platform, gate = running
    gate.open()  # this test holds no job: an open gate renders as a stack without one does
    platform.up("staging")
    with _api(platform) as api:
        job = _settled(api, _submit(api, 1))
        assert job["status"] == "completed", job
        before = api.get(job["results"][0]["url"])
        assert before.status_code == 200
    platform.down("staging")
    platform.up("staging")
    with _api(platform) as api:
        again = api.get(f"/api/status/{job['job_id']}").json()
        assert again["status"] == "completed"
        after = api.get(again["results"][0]["url"])
        assert after.status_code == 200, after.text
        assert after.content == before.content and after.headers["content-type"] == "image/png"


def test_down_lets_a_running_job_finish_and_deliver_its_webhook(running: tuple[LocalPlatform, _Gate]) -> None:
    platform, gate = running
    home = platform.home
    platform.up("staging")
    runpod = _runpod(platform)
    with _api(platform) as api:
        job_id = _submit(api, 3)
        runpod_job_id = api.get(f"/api/status/{job_id}").json()["runpod_job_id"]
        assert wait_until(lambda: runpod.status(runpod_job_id).status == "IN_PROGRESS", 60)
        worker_id = runpod.status(runpod_job_id).worker_id
    _down_releasing(platform, gate, worker_id)
    assert wait_until(lambda: not processes_naming(str(home)), 30), processes_naming(str(home))
    platform.up("staging")
    with _api(platform) as api:
        job = api.get(f"/api/status/{job_id}").json()
        assert job["status"] == "completed", job
        assert api.get(job["results"][0]["url"]).status_code == 200
    assert _delivery_sources(platform, job_id) == ["webhook"]


def test_a_worker_killed_mid_job_is_requeued_and_the_job_completes_by_webhook(
        running: tuple[LocalPlatform, _Gate]) -> None:
    platform, gate = running
    platform.up("staging")
    runpod = _runpod(platform)
    # The endpoint's count so far (0 on a fresh stack): this job adds one.
    retried = runpod.health().jobs["retried"]
    with _api(platform) as api:
        job_id = _submit(api, 1)
        runpod_job_id = api.get(f"/api/status/{job_id}").json()["runpod_job_id"]
        _kill_the_worker_running(platform, runpod, runpod_job_id)
        gate.open()
        job = _settled(api, job_id)
    assert job["status"] == "completed", job
    assert runpod.health().jobs["retried"] == retried + 1
    assert _delivery_sources(platform, job_id) == ["webhook"]


def test_a_job_whose_worker_is_killed_twice_fails_by_webhook_with_the_reason(
        running: tuple[LocalPlatform, _Gate]) -> None:
    platform, _ = running  # the gate stays closed: the job is held until it fails
    platform.up("staging")
    runpod = _runpod(platform)
    with _api(platform) as api:
        job_id = _submit(api, 2)
        runpod_job_id = api.get(f"/api/status/{job_id}").json()["runpod_job_id"]
        _kill_the_worker_running(platform, runpod, runpod_job_id)
        _kill_the_worker_running(platform, runpod, runpod_job_id)
        job = _settled(api, job_id)
    assert job["status"] == "failed" and "exited" in job["error"], job
    assert _delivery_sources(platform, job_id) == ["webhook"]


def test_jobs_in_flight_when_the_service_is_killed_settle_by_webhook_once_it_is_back(
        running: tuple[LocalPlatform, _Gate]) -> None:
    platform, gate = running
    home = platform.home
    platform.up("staging")
    runpod = _runpod(platform)
    with _api(platform) as api:
        job_ids = [_submit(api, seed) for seed in range(2)]
        runpod_ids = [api.get(f"/api/status/{j}").json()["runpod_job_id"] for j in job_ids]
        assert wait_until(lambda: all(runpod.status(r).status == "IN_PROGRESS" for r in runpod_ids), 60)
        service = platform.require_running("staging")["service_pid"]
        assert "service.local_server" in processes_naming(str(home))[service]
        os.kill(service, signal.SIGKILL)
        assert wait_until(lambda: service not in processes_naming(str(home)), 30)
        gate.open()  # both finish now; the host starts the service again, RunPod's retries find it there
        jobs = [_settled(api, j) for j in job_ids]
    assert [j["status"] for j in jobs] == ["completed", "completed"], jobs
    assert all(_delivery_sources(platform, j) == ["webhook"] for j in job_ids)
    # the stack's state names the service the host started again, so an operator's kill finds it
    restarted = platform.require_running("staging")["service_pid"]
    assert restarted != service and "service.local_server" in processes_naming(str(home))[restarted]


def test_a_deploy_while_jobs_run_lets_them_finish_on_the_old_image_and_new_jobs_take_the_new(
        running: tuple[LocalPlatform, _Gate], tmp_path: Path) -> None:
    platform, gate = running
    old = platform.up("staging").image
    source = tmp_path / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write("\n# a new release\n")
    new = image_store.build_local_image(source, platform.home)
    assert new != old
    runpod = _runpod(platform)
    with _api(platform) as api:
        held = _submit(api, 1)
        runpod_id = api.get(f"/api/status/{held}").json()["runpod_job_id"]
        assert wait_until(lambda: runpod.status(runpod_id).status == "IN_PROGRESS", 60)
    with ThreadPoolExecutor(1) as pool:
        deploy = pool.submit(platform.deploy, "staging", new)
        try:
            # The stack has taken the new image (the endpoint too) while the job still renders on the old.
            assert wait_until(lambda: platform.require_running("staging").get("image") == new
                              or deploy.done(), 60)
            assert runpod.status(runpod_id).status == "IN_PROGRESS"
        finally:
            gate.open()
        deploy.result()
    with _api(platform) as api:
        after = _submit(api, 2)
        finished = [_settled(api, held), _settled(api, after)]
    assert [j["status"] for j in finished] == ["completed", "completed"], finished
    assert runpod.status(runpod_id).output["worker_image_tag"] == old
    assert [j["worker_image_tag"] for j in finished] == [old, new]


def test_up_after_the_host_was_killed_serves_old_results_and_names_the_jobs_it_lost(
        running: tuple[LocalPlatform, _Gate]) -> None:
    platform, gate = running
    home = platform.home
    said: list[str] = []
    platform.up("staging")
    runpod = _runpod(platform)
    with _api(platform) as api:
        gate.open()
        done = _settled(api, _submit(api, 0))
        assert done["status"] == "completed", done
        gate.close()
        lost = _submit(api, 1)
        runpod_id = api.get(f"/api/status/{lost}").json()["runpod_job_id"]
        assert wait_until(lambda: runpod.status(runpod_id).status == "IN_PROGRESS", 60)
    os.kill(platform.require_running("staging")["pid"], signal.SIGKILL)
    assert wait_until(lambda: not processes_naming(str(home)), 30), processes_naming(str(home))

    platform.up("staging", said.append)
    assert any(lost in line and "recover" in line for line in said), said
    with _api(platform) as api:
        again = api.get(f"/api/status/{done['job_id']}").json()
        assert api.get(again["results"][0]["url"]).status_code == 200
        assert api.post(f"/api/admin/recover/{lost}").status_code == 200
        assert api.get(f"/api/status/{lost}").json()["status"] == "failed"
