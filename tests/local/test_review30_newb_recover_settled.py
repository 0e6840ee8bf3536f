"""Review 30 (newb): `goldgate recover` of a job that had already completed (its webhook came) printed
"<job>: completed (duplicate)" and nothing else: a newcomer trying the README's `recover` on a demo job read
"duplicate" as something gone wrong. It now says the job had already ended so and that nothing changed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from processes import wait_until
from stuck_support import up_staging

from goldgate.cli import main


def test_recover_of_a_job_its_webhook_settled_says_nothing_changed(home: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    platform = up_staging(home)
    try:
        api = platform.require_running("staging")["api_url"]
        headers = {"Authorization": f"Bearer {platform.api_token('staging')}"}
        job = httpx.post(f"{api}/api/queue/create", headers=headers, timeout=30,
                         json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse at dusk"}}).json()
        job_id = job["job_id"]

        def status() -> str:
            return httpx.get(f"{api}/api/status/{job_id}", headers=headers, timeout=30).json()["status"]

        assert wait_until(lambda: status() not in ("queued", "in_progress"), 90)  # its webhook settled it
        assert status() == "completed"
        capsys.readouterr()
        assert main(["recover", job_id, "--stack", "staging", "--home", str(home)]) == 0
        out = capsys.readouterr().out
    finally:
        platform.down("staging")
    settled = (f"{job_id}: completed (duplicate): it had already ended so (its webhook, or an earlier recover, settled "
               "it); nothing changed")
    assert out.splitlines() == [settled], out
