"""Game day, "No checkpoint models appear to be available" on PROD: the checkpoint goes missing from the image
snapshot PROD runs, its workers exit at start and jobs stay queued. The on-call engineer follows docs/RUNBOOK.md:
the doctor and the start-up log grep (read from its text) show the phrase, PROD is rolled back first, the rebuild
(`goldgate release`) bakes the file again into the same digest, which the gate refuses after that rollback until
`goldgate promote --retry-rejected` (read from step 4) puts it back. Real stacks and golden runs (reports under the
test's own directory)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
from ci_policy import needs
from processes import processes_naming, wait_until

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform, recent_worker_exits
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md"
PHRASE = "No checkpoint models appear to be available"


def _section() -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    start = text.index(f'\n## "{PHRASE}"\n')
    return text[start:text.index("\n## ", start + 1)]


def _steps(section: str) -> tuple[list[str], str, list[str]]:
    """The doctor command for a stack, the start-up log grep and step 4's promotion after the rebuild."""
    doctor = next(ln for ln in section.splitlines() if ln.strip().startswith("goldgate doctor --stack "))
    grep = re.search(r"`(grep -h [^`]+)`", section)
    step4 = " ".join(section[section.index("4. **Rebuild"):].split())
    retry = re.search(r"`(goldgate promote --retry-rejected[^`]*)`", step4)
    assert grep and retry, "the section gives no start-up log grep, or step 4 no promotion after the rebuild"
    return shlex.split(doctor.split("#", 1)[0]), grep.group(1).replace("<stack>", "prod"), shlex.split(retry.group(1))


def _earlier_build(home: Path, tmp: Path) -> str:
    """The release PROD ran before: the worker source with one more comment line in its code."""
    source = tmp / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write("\n# The earlier release.\n")
    return image_store.build_local_image(source, home)


def _kill_prod_workers(home: Path) -> None:
    """SIGKILL PROD's running workers, each with its session, as a lost host would: PROD keeps `workers_min`,
    so the RunPod emulator starts the next worker at once, on the snapshot as it is now. (The stack was
    stopped and started again for that: a host, its object store and service started only so that a worker
    would start.)"""
    leaders = [pid for pid, argv in processes_naming(str(home)).items()
               if "goldgate.local.worker_process" in argv and _leads_its_session(pid)
               and _stack_of(pid) == "prod"]
    assert leaders, "PROD runs no worker"
    for pid in leaders:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _leads_its_session(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _stack_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((entry[6:].decode() for entry in environ if entry.startswith(b"STACK=")), None)


def _no_models(exits: list[dict]) -> bool:
    return any(e["cause"] == "no_models" for e in exits)


def test_prod_without_its_checkpoint_is_diagnosed_and_recovered_with_the_runbooks_steps(home, tmp_path, capsys):
    doctor, grep, retry = _steps(_section())
    opts = ["--reports-dir", str(tmp_path / "reports"), "--home", str(home)]
    # The setup's golden runs (the releases PROD ran before the incident) take their cases one at a time: one
    # STAGING worker per image instead of a cold start for each of three (most of a run's CPU). The report and
    # the gate are the same for either: what the cases rendered, not how many ran at once.
    setup_golden = ["--concurrency", "1"]
    platform = LocalPlatform(home)  # the shipped stacks file: the one `goldgate release` reads
    earlier = _earlier_build(home, tmp_path)
    StackDir(home, "staging").pin(earlier, reason="test")
    platform.up("staging", timeout_s=90)
    platform.up("prod", timeout_s=90)
    try:
        assert main(["golden", "staging", *setup_golden, *opts]) == 0
        assert main(["promote", *opts]) == 0
        current = image_store.build_local_image(WORKER_SOURCE, home)
        assert main(["deploy", "staging", "--image", current, "--home", str(home)]) == 0
        assert main(["golden", "staging", *setup_golden, *opts]) == 0
        assert main(["promote", *opts]) == 0

        # the incident: the checkpoint is gone from the snapshot PROD runs; its next workers find no model
        for model in (home / "images" / current.rsplit(":", 1)[1] / "models" / "checkpoints").iterdir():
            model.unlink()
        # RunPod replaces a lost worker: PROD's next one starts on the broken snapshot
        _kill_prod_workers(home)
        status = platform.status("prod")
        with httpx.Client(base_url=status.api_url, timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token('prod')}"}) as api:
            created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
            assert created.status_code == 202, created.text
            # Waits on the event, the RunPod emulator's log of a worker's unexpected exit (read as `status`
            # reads it), rather than on `status` itself, about 80 ms of CPU a call; then `status` must show
            # that exit, and (the killed worker's exit being one too) that it was a worker that found no model
            # at start.
            emulator_log = Path(status.logs_dir) / "runpod-emulator.jsonl"
            assert wait_until(lambda: _no_models(recent_worker_exits(emulator_log)), 60) \
                and _no_models(platform.status("prod").worker_exits), \
                "no PROD worker exited at start for want of models"
            assert api.get(f"/api/status/{created.json()['job_id']}").json()["status"] == "queued"
        capsys.readouterr()

        assert main([*doctor[1:], "--home", str(home)]) == 1
        assert PHRASE in capsys.readouterr().out
        logged = subprocess.run(["bash", "-c", grep], env={**os.environ, "GOLDGATE_HOME": str(home)},
                                capture_output=True, text=True, timeout=30, check=False).stdout.splitlines()
        assert logged and '"event":"preflight_failed"' in logged[-1] and PHRASE in logged[-1], logged

        assert main(["rollback", *opts]) == 0  # "If PROD is failing right now, roll back first"
        assert platform.pinned_image("prod") == earlier
        assert main(["release", "--context", str(WORKER_SOURCE), *opts]) == 1  # the same digest: prod_verdict
        assert "prod_verdict" in capsys.readouterr().err
        assert main([*retry[1:], *opts]) == 0
        assert platform.pinned_image("prod") == current
        assert main([*doctor[1:], "--home", str(home)]) == 0  # the rebuild baked the checkpoint again
    finally:
        platform.down("prod")
        platform.down("staging")
