"""Game day, "A stuck job (no webhook came)": the incident staged on a real local stack the way the runbook's
rehearsal paragraph says (its `local.*` settings, read from docs/RUNBOOK.md), then found and settled with the
runbook's own commands, read from the same text: `goldgate stuck`, which lists the stuck jobs, and the recover line
it gives (the section's `goldgate recover`). A step the runbook gets wrong (a flag, an exit code) fails here instead
of during an incident."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import httpx
from ci_policy import needs
from processes import wait_until
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.runpod.errors import RunPodNotFound
from goldgate.runpod.jobs import DataPlaneClient

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md"


def _section(title: str) -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def _rehearsal_settings(section: str) -> dict:
    """The `local:` settings the rehearsal paragraph names: the retention key and every fault it sets."""
    paragraph = section[section.index("To rehearse a recovery"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    retention = re.search(r"`local\.(\w+)` \(seconds", paragraph)
    faults = dict(re.findall(r"`local\.faults\.(\w+): (\d+)`", paragraph))
    assert retention and faults, f"the rehearsal paragraph names no retention key or fault: {paragraph!r}"
    # 1 s: the shortest the runbook allows ("1 to 1800"), so RunPod forgets the job while the test waits
    return {retention.group(1): 1, "faults": {k: int(v) for k, v in faults.items()}, "webhook_retry_delay_s": 0.2}


def _sh_line(section: str, first_word: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    lines = [ln for block in blocks for ln in block.splitlines() if ln.strip().startswith(first_word + " ")]
    assert lines, f"docs/RUNBOOK.md gives no `{first_word} ...` command in this section"
    return shlex.split(lines[0].split("  #", 1)[0])


def _stuck_command(section: str) -> list[str]:
    """The section's listing (its first `goldgate stuck` line) and the rehearsal paragraph's form of it, which must
    be the same command: the rehearsal's job is younger than the default window, so it adds --older-than."""
    listing = _sh_line(section, "goldgate stuck")
    assert listing[:3] == ["goldgate", "stuck", "prod"], listing
    rehearsal = re.search(r"`(goldgate stuck [^`]*)`", section[section.index("To rehearse a recovery"):])
    assert rehearsal, "the rehearsal paragraph does not say how to list the stuck job"
    argv = shlex.split(rehearsal.group(1))
    assert argv[:3] == ["goldgate", "stuck", "staging"] and set(argv[3:]) <= {"--older-than", "0"}, argv
    return argv


def _stuck_jobs(section: str, home: Path, capsys) -> tuple[int, list[dict]]:
    """The runbook's listing, run as written (as JSON, to read it here): its exit code and the jobs it lists."""
    capsys.readouterr()
    code = main([*_stuck_command(section)[1:], "--home", str(home), "--json"])
    return code, json.loads(capsys.readouterr().out)["jobs"]


def _forgotten(runpod: DataPlaneClient, runpod_job_id: str) -> bool:
    try:
        runpod.status(runpod_job_id)
    except RunPodNotFound:
        return True
    return False


def test_the_runbooks_stuck_job_rehearsal_is_found_and_settled_with_the_runbooks_commands(home, capsys):
    section = _section("A stuck job (no webhook came)")
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_max": 1},
                                               staging=_rehearsal_settings(section)))
    StackDir(home, "staging").pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up("staging", timeout_s=90)
    try:
        status = platform.status("staging")
        api = httpx.Client(base_url=status.api_url, timeout=30,
                           headers={"Authorization": f"Bearer {platform.api_token('staging')}"})
        runpod = DataPlaneClient(platform.runpod_api_key("staging"), status.endpoint_id,
                                 base_url=status.runpod_endpoint_base)
        created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "stuck"}})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        runpod_job_id = api.get(f"/api/status/{job_id}").json()["runpod_job_id"]
        assert wait_until(lambda: _forgotten(runpod, runpod_job_id), 90), "RunPod never forgot the job"

        code, listed = _stuck_jobs(section, home, capsys)  # what the on-call engineer sees: the job never settled
        assert code == 1 and [(j["id"], j["runpod_job_id"]) for j in listed] == [(job_id, runpod_job_id)], listed

        recover = _sh_line(section, "goldgate recover")
        assert recover[:3] == ["goldgate", "recover", "<job_id>"], recover
        argv = [job_id if word == "<job_id>" else "staging" if word == "prod" else word for word in recover[1:]]
        assert shlex.split(listed[0]["recover"]) == ["goldgate", *argv]  # the line the listing gives is the runbook's
        assert main([*argv, "--home", str(home)]) == 0
        assert "completed" in capsys.readouterr().out

        assert _stuck_jobs(section, home, capsys) == (0, [])
        view = api.get(f"/api/status/{job_id}").json()
        assert view["status"] == "completed" and view["results"], view
        for result in view["results"]:
            image = httpx.get(result["url"], timeout=30)
            assert image.status_code == 200 and len(image.content) == result["bytes"]
        runpod.close()
        api.close()
    finally:
        platform.down("staging")
