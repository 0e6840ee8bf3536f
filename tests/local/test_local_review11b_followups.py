"""Local-target follow-ups of review 11: `up` of a stack whose stacks file changed, a failed host that will not
stop, the demo's result downloads, `down`'s output, the host log's secrets, and old worker logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml
from ci_policy import require
from processes import processes_naming, wait_until
from serving import JsonHandler, serving
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands import local
from goldgate.errors import StateError
from goldgate.local import platform as platform_module
from goldgate.local.platform import LocalPlatform
from goldgate.local.stackhost import StackHost
from goldgate.local.state import StackDir

REPO = Path(__file__).resolve().parents[2]
DAY_S = 86400


def _edit(path: Path, stack: str, section: str, **values: object) -> None:
    doc = yaml.safe_load(path.read_text())
    doc["stacks"][stack].setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(doc))


def test_up_of_a_running_stack_whose_stacks_file_changed_says_a_restart_applies_it(home: Path) -> None:
    path = stacks_file(home)
    platform = LocalPlatform(home, path)
    platform.up("prod")
    try:
        said: list[str] = []
        platform.up("prod", said.append)
        assert said == ["prod: already up"]
        # The golden thresholds are read by each command that gates on them: no restart needed for those.
        _edit(path, "prod", "thresholds", error_rate=0.5)
        platform.up("prod", said.append)
        assert said == ["prod: already up"] * 2
        assert not platform.status("prod").spec_changed

        _edit(path, "prod", "endpoint", workers_max=2)
        said.clear()
        status = platform.up("prod", said.append)
        assert said == ["prod: already up",
                        (f"prod: {path} changed since it started; `goldgate down prod && goldgate up prod` applies it "
                         "(`goldgate reload prod` applies its `api` settings alone, with no job stopped)")]
        assert status.running and status.spec_changed
        shown = local._render_status(platform.status("prod").to_dict())
        assert "`goldgate down prod && goldgate up prod` applies it" in shown, shown

        platform.down("prod")
        said.clear()
        status = platform.up("prod", said.append)  # the restart applies it: nothing more to say
        assert not status.spec_changed
        assert not any("changed" in line for line in said), said
    finally:
        platform.down("prod")


def test_a_host_that_reports_failed_and_does_not_stop_is_stopped_by_up_not_a_traceback(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require(Path("/proc/self").is_dir(), "/proc (the test finds the host's processes through it)")
    # A stand-in host: it says it failed, then its shutdown hangs (a worker that will not stop) until it is
    # signalled. `up` starts it as `<python> -m goldgate.local.stackhost --stack S --home H ...`.
    host = tmp_path / "stand-in-host"
    host.write_text(f"#!{sys.executable}\n" + """
import json, os, sys, time
from pathlib import Path
args = dict(zip(sys.argv[3::2], sys.argv[4::2]))
state = Path(args["--home"]) / "stacks" / args["--stack"] / "state.json"
state.write_text(json.dumps({"status": "failed", "pid": os.getpid(), "error": "no room for the bucket"}))
time.sleep(600)
""")
    host.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(host))
    monkeypatch.setattr(platform_module, "FAILED_HOST_EXIT_S", 0.5)
    platform = LocalPlatform(home, stacks_file(home))
    with pytest.raises(StateError, match=r"stack prod failed to start: no room for the bucket \(logs: "):
        platform.up("prod")
    assert wait_until(lambda: not processes_naming(str(home)), 10), \
        f"`up` left the failed host running: {processes_naming(str(home))}"


class _StandInService(JsonHandler):
    """The public API's answers for one demo job, whose one result link is `result_url`."""

    result_url = ""

    def do_GET(self) -> None:
        if self.path == "/api/workflows":
            self._json(200, {"workflows": [{"id": "sdxl-txt2img", "parameters": []}]})
        elif self.path.startswith("/api/status/"):
            self._json(200, {"status": "completed", "results": [{"key": "jobs/j1/out.png", "url": self.result_url}]})
        else:
            self._json(404, {"error": {"code": "not_found", "message": "no such result (it expired)"}})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._json(200, {"job_id": "a" * 32, "status": "queued"})


@pytest.fixture
def service() -> Iterator[str]:
    with serving(_StandInService) as url:
        yield url


def _closed_port() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInService)
    port = server.server_address[1]
    server.server_close()
    return port


@pytest.mark.parametrize("download", ["answers 404", "connection lost"])
def test_a_demo_result_download_that_fails_is_one_line_naming_the_result(
        service: str, download: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    # A stand-in API, not a real stack: a real service records a job completed only once its result objects
    # are in the store (else it fails the job), and `demo` downloads on its very next step, so a real download
    # can only be made to fail by racing it.
    link = (f"{service}/api/result/jobs/j1/out.png?exp=1&sig=00ff" if download == "answers 404" else
            f"http://127.0.0.1:{_closed_port()}/api/result/jobs/j1/out.png?exp=1&sig=00ff")
    monkeypatch.setattr(_StandInService, "result_url", link)

    class StandInApi(local.ApiClient):
        def __init__(self, platform: LocalPlatform, stack: str, timeout_s: float = 30.0) -> None:
            self.base = service
            self.http = httpx.Client(base_url=service, timeout=10)

    monkeypatch.setattr(local, "ApiClient", StandInApi)
    monkeypatch.setattr(local, "ensure_up", lambda platform, stack: None)
    code = main(["demo", "--home", str(tmp_path / "home"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("goldgate: error: "), err
    assert "jobs/j1/out.png" in last
    if download == "answers 404":
        assert "answered 404: no such result (it expired)" in last
    else:
        assert "is the stack still up?" in last
    assert "sig=00ff" not in err  # the link's signature is a credential for the image


def test_down_whose_output_cannot_be_written_says_so_in_one_line(tmp_path: Path) -> None:
    require(Path("/dev/full").exists(), "/dev/full (fills the command's stdout)")
    (tmp_path / "h").mkdir()  # a state dir: where there is none, `down` says so first, on stderr
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "goldgate.cli", "down", "prod", "--home", str(tmp_path / "h")],
                              cwd=REPO, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == ("goldgate: error: cannot write the output to stdout: No space left on device; "
                                   "check where it is redirected (a full disk?)")


def test_the_hosts_log_masks_the_stacks_credentials(home: Path) -> None:
    host = StackHost("prod", home, stacks_file(home))
    try:
        d = StackDir(home, "prod")
        carried = {name: d.secret(name) for name in ("api_token", "webhook_secret", "s3_secret_access_key",
                                                      "runpod_api_key")}
        host.log.error("stack.redeploy_failed", message=f"the service refused config {carried}",
                       error={"type": "RuntimeError", "message": f"Bearer {carried['api_token']}"})
    finally:
        host.listener.close()
        host.lifeline.close()
    text = (d.logs_dir / "stackhost.jsonl").read_text()
    line = json.loads(text.splitlines()[-1])
    assert line["event"] == "stack.redeploy_failed"
    for name, value in carried.items():
        assert value not in text, f"{name} reached the host's log"
    assert line["error"]["message"] == "Bearer [redacted]"


def test_up_removes_worker_logs_untouched_for_a_week_and_keeps_the_others(home: Path) -> None:
    logs = StackDir(home, "prod").logs_dir
    logs.mkdir(parents=True)
    old, recent, other = logs / "worker-old1.log", logs / "worker-new1.log", logs / "notes-old.log"
    for path in (old, recent, other):
        path.write_text("a line\n")
    weeks_ago = time.time() - 8 * DAY_S
    for path in (old, other):
        os.utime(path, (weeks_ago, weeks_ago))
    platform = LocalPlatform(home, stacks_file(home))
    platform.up("prod")
    try:
        assert not old.exists()
        assert recent.read_text() == "a line\n"
        assert other.exists()  # not a worker log: not goldgate's to remove
    finally:
        platform.down("prod")
