"""docs/RUNBOOK.md, "No checkpoint models appear to be available", says how to make it happen on the local target,
and its commands, run as written, do: the checkpoint leaves the snapshot PROD runs, so a job on a worker already
running fails with the phrase in its error and `goldgate doctor --stack prod` reports it. Before, the section
named no way to see either locally (a drill, or trying the first aid before an incident)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from ci_policy import needs
from processes import wait_until

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md"
PHRASE = "No checkpoint models appear to be available"


def _drill() -> str:
    """The shell block of the section that makes the phrase happen on the local target."""
    text = RUNBOOK.read_text(encoding="utf-8")
    start = text.index(f'\n## "{PHRASE}"\n')
    section = text[start:text.index("\n## ", start + 1)]
    # a paragraph starting "To see ... local target", and the shell block right after it (no blank line between)
    found = re.search(r"\nTo see[^\n]*local target[^\n]*\n(?:[^\n]+\n)*?```sh\n(.*?)```", section, re.DOTALL)
    assert found, "the section does not say how to make it happen on the local target"
    return found.group(1)


def _idle_workers(platform: LocalPlatform) -> bool:
    return any(w.get("status") == "IDLE" for w in platform.status("prod").workers)


def test_the_runbooks_local_drill_takes_the_checkpoint_away_from_prod(home: Path, capsys) -> None:
    drill = _drill()
    platform = LocalPlatform(home)  # the shipped stacks file, as `goldgate` reads it
    StackDir(home, "prod").pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up("prod", timeout_s=90)
    try:
        assert wait_until(lambda: _idle_workers(platform), 60), platform.status("prod").workers
        env = {**os.environ, "GOLDGATE_HOME": str(home),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        ran = subprocess.run(["bash", "-euo", "pipefail", "-c", drill], env=env, cwd=home, capture_output=True,
                             text=True, timeout=60, check=False)
        assert ran.returncode == 0, ran.stderr

        status = platform.status("prod")
        with httpx.Client(base_url=status.api_url, timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token('prod')}"}) as api:
            created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
            assert created.status_code == 202, created.text
            job_id = created.json()["job_id"]

            def settled() -> dict | None:
                body = api.get(f"/api/status/{job_id}").json()
                return body if body["status"] not in ("queued", "in_progress") else None

            assert wait_until(settled, 60), "the job never settled"
            body = api.get(f"/api/status/{job_id}").json()
        assert body["status"] == "failed" and PHRASE in body["error"], body

        capsys.readouterr()
        assert main(["doctor", "--stack", "prod", "--home", str(home)]) == 1
        assert PHRASE in capsys.readouterr().out
    finally:
        platform.down("prod")
