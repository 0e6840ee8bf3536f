"""Game day, "Disaster recovery (D1)" on a local stack: a drill takes a backup, a bad write empties the jobs table,
and the runbook's local restore block, read from docs/RUNBOOK.md and run as written by a shell with the
`goldgate` console script, brings the jobs back. A block missing a step (the restore needs the stack stopped) or
pointing at the wrong backup fails here."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
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


def _local_restore_block() -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    start = text.index("\n## Disaster recovery (D1)\n")
    section = text[start:text.index("\n## ", start + 1)]
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", section, re.DOTALL) if "goldgate dr-restore" in b]
    assert blocks, "docs/RUNBOOK.md, Disaster recovery (D1), gives no block with the local `goldgate dr-restore`"
    return textwrap.dedent(blocks[0]).replace("<stack>", "staging")


def _client(platform: LocalPlatform) -> httpx.Client:
    return httpx.Client(base_url=platform.status("staging").api_url, timeout=30,
                        headers={"Authorization": f"Bearer {platform.api_token('staging')}"})


def _create(api: httpx.Client, prompt: str) -> str:
    created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}})
    assert created.status_code == 202, created.text
    return created.json()["job_id"]


def _settled(api: httpx.Client, job_id: str) -> bool:
    return api.get(f"/api/status/{job_id}").json()["status"] not in ("queued", "in_progress")


def test_the_runbooks_local_restore_block_brings_back_the_jobs_a_bad_write_deleted(home, capsys):
    platform = LocalPlatform(home)  # the shipped stacks file: the one the runbook's `goldgate up` reads
    StackDir(home, "staging").pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up("staging", timeout_s=90)
    try:
        assert main(["dr-drill", "staging", "--home", str(home)]) == 0  # an older backup, holding no job
        with _client(platform) as api:
            kept = _create(api, "before the backup")
            assert wait_until(lambda: _settled(api, kept), 60), "the job never settled"
        assert main(["dr-drill", "staging", "--home", str(home)]) == 0  # the newest backup: the one to restore
        with _client(platform) as api:
            later = _create(api, "after the backup")
            assert wait_until(lambda: _settled(api, later), 60), "the job never settled"
        with sqlite3.connect(home / "stacks" / "staging" / "db.sqlite") as db:  # the bad write
            db.executescript("DELETE FROM job_metrics; DELETE FROM webhook_deliveries; DELETE FROM jobs;")
        capsys.readouterr()

        # The runbook asks the reader to name the backup --list shows (the newest taken before the damage: here, the
        # newest); it never picks one blindly.
        picked = max(p.name for p in (home / "backups" / "staging").glob("*.sqlite"))
        env = {**os.environ, "GOLDGATE_HOME": str(home), "PICKED": picked,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        ran = subprocess.run(["bash", "-e", "-c", _local_restore_block()], env=env, capture_output=True, text=True,
                             timeout=120, check=False)
        assert ran.returncode == 0, ran.stderr

        with _client(platform) as api:
            got = api.get(f"/api/status/{kept}")
            assert got.status_code == 200, f"the job the backup holds is not back: {got.text}"
            view = got.json()
            assert view["status"] == "completed" and view["results"], view
            image = httpx.get(view["results"][0]["url"], timeout=30)
            assert image.status_code == 200 and len(image.content) == view["results"][0]["bytes"]
            assert api.get(f"/api/status/{later}").status_code == 404  # as the runbook says: not in the backup
    finally:
        platform.down("staging")
