"""Review 30 (newb): `status` printed a newline inside a value as `\\n` (review 29), but `doctor`, `recover`, `demo` and
`down` printed the values they read from disk, an HTTP answer or the working directory as they were, so a value
holding a newline started a line goldgate never wrote: a second "worker preflight: OK" under a FAILED one, an "all jobs
completed" line of its own. Each of them now prints such a newline as `\\n`, as `status` does; --json keeps the value
as it is."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from processes import kill_everything_naming

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform

JOB = "b" * 32


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_doctor_prints_a_link_target_holding_a_newline_on_one_line(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # A dangling link where the checkpoint belongs: doctor names where it points, a name read from the disk.
    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "sd_xl_base_1.0.safetensors").symlink_to("gone\nworker preflight: OK")
    code, out = _run(capsys, "doctor", "--model-root", str(root))
    assert code == 1
    verdicts = [line for line in out.splitlines() if line.startswith("worker preflight:")]
    assert verdicts == ["worker preflight: FAILED"], out
    assert "-> gone\\nworker preflight: OK is a broken symbolic link" in out, out
    # The report's own lines are still lines: its head, then a line per model, loader folder and problem.
    assert out.splitlines()[1].startswith("model roots: "), out
    assert any(line.startswith("  [MISSING] checkpoints/sd_xl_base_1.0.safetensors: ") for line in out.splitlines())
    code, out = _run(capsys, "doctor", "--model-root", str(root), "--json")
    model = next(m for m in json.loads(out)["models"] if m["file"] == "sd_xl_base_1.0.safetensors")
    assert "-> gone\nworker preflight: OK is a broken" in model["message"]  # --json: the value as it is


class _Service(BaseHTTPRequestHandler):
    """A stack's API over loopback: the recovery settled the job as failed, and its status says why in two lines."""

    error = "RunPod has no job rp-1\n  RunPod still has it IN_QUEUE: no webhook was lost"

    def do_POST(self) -> None:
        self._answer({"job_id": JOB, "applied": True, "reason": "applied", "status": "failed",
                      "runpod_status": "FAILED"})

    def do_GET(self) -> None:
        self._answer({"job_id": JOB, "status": "failed", "error": self.error, "results": []})

    def _answer(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def _service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_recover_prints_a_job_error_holding_a_newline_on_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with _service() as url:
        # The stack `recover` reaches is this API, not a stack host of the home.
        monkeypatch.setattr(LocalPlatform, "require_running", lambda _self, _stack: {"api_url": url})
        monkeypatch.setattr(LocalPlatform, "api_token", lambda _self, _stack: "t" * 32)
        code, out = _run(capsys, "recover", JOB, "--stack", "staging", "--home", str(tmp_path / "home"))
    assert code == 0
    assert out.splitlines() == [
        f"{JOB}: failed (applied)",
        "  error: RunPod has no job rp-1\\n  RunPod still has it IN_QUEUE: no webhook was lost"], out


@pytest.fixture
def newline_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory whose name holds a newline and a line of the demo's, and no GOLDGATE_HOME: the state dir
    is its ./.goldgate (a name from the environment, not an option, which refuses control characters)."""
    cwd = tmp_path / "work\nall jobs completed; results in elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("GOLDGATE_HOME", raising=False)
    try:
        yield cwd
    finally:
        main(["down", "all"])
        kill_everything_naming(str(cwd))


def test_down_prints_a_state_dir_holding_a_newline_on_one_line(newline_cwd: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "down", "all")
    assert code == 0
    assert out.splitlines() == ["down: nothing to stop: no state dir at "
                                + str(newline_cwd / ".goldgate").replace("\n", "\\n")], out


def test_demo_prints_a_results_dir_holding_a_newline_on_one_line(newline_cwd: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "demo")
    assert code == 0, out
    verdicts = [line for line in out.splitlines() if line.startswith("all jobs completed")]
    assert len(verdicts) == 1, out
    results = str(newline_cwd / ".goldgate" / "demo-results")
    shown = results.replace("\n", "\\n")
    assert f"results in {shown} (" in verdicts[0], out
    shipped = Path(__file__).resolve().parents[2] / "images" / "worker" / "workflows"
    # the images were saved where it says, one per workflow
    assert len(list(Path(results).iterdir())) == len(list(shipped.glob("*.json")))
