"""Game day, "No checkpoint models appear to be available" on PROD: the checkpoint goes missing from the image
snapshot PROD runs, its workers exit at start and jobs stay queued. The on-call engineer follows docs/RUNBOOK.md:
the doctor and the start-up log grep (read from its text) show the phrase, PROD is rolled back first, the rebuild
(`goldgate release`) bakes the file again into the same digest, which the gate refuses after that rollback until
`goldgate promote --retry-rejected` (read from step 4) puts it back. Real stacks and golden runs (reports under the
test's own directory)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
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
    """The release PROD ran before: the worker source with one more line in its README."""
    source = tmp / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "README.md").open("a") as readme:
        readme.write("\nThe earlier release.\n")
    return image_store.build_local_image(source, home)


def test_prod_without_its_checkpoint_is_diagnosed_and_recovered_with_the_runbooks_steps(home, tmp_path, capsys):
    doctor, grep, retry = _steps(_section())
    opts = ["--reports-dir", str(tmp_path / "reports"), "--home", str(home)]
    platform = LocalPlatform(home)  # the shipped stacks file: the one `goldgate release` reads
    earlier = _earlier_build(home, tmp_path)
    StackDir(home, "staging").pin(earlier, reason="test")
    platform.up("staging", timeout_s=90)
    platform.up("prod", timeout_s=90)
    try:
        assert main(["golden", "staging", *opts]) == 0
        assert main(["promote", *opts]) == 0
        current = image_store.build_local_image(WORKER_SOURCE, home)
        assert main(["deploy", "staging", "--image", current, "--home", str(home)]) == 0
        assert main(["golden", "staging", *opts]) == 0
        assert main(["promote", *opts]) == 0

        # the incident: the checkpoint is gone from the snapshot PROD runs; its next workers find no model
        for model in (home / "images" / current.rsplit(":", 1)[1] / "models" / "checkpoints").iterdir():
            model.unlink()
        platform.down("prod")
        platform.up("prod", timeout_s=90)
        status = platform.status("prod")
        with httpx.Client(base_url=status.api_url, timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token('prod')}"}) as api:
            created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
            assert created.status_code == 202, created.text
            assert wait_until(lambda: platform.status("prod").worker_exits, 60), "no PROD worker exited at start"
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
