"""docs/RUNBOOK.md's "A job with an input image" lines, run as written with bash and curl against the local server
(HTTP on loopback, SQLite, moto's S3): with the stack's token they create the job; with another stack's token (a
STAGING token sent to PROD) the refused upload is what the engineer reads, and no create is sent. Before, the
upload's line met the refusal with a Python traceback (KeyError: 'key') and went on to send a create with an
empty key, whose 400 `invalid_input` hid the real cause."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ci_policy import needs
from fake_runpod_plane import FakeRunPod
from service_testkit import API_TOKEN, LogCapture, edge_in_thread

ROOT = Path(__file__).resolve().parents[2]
SECTION = "A job with an input image"

pytestmark = needs(shutil.which("curl") is not None and shutil.which("bash") is not None, "curl and bash")


def _lines() -> str:
    text = (ROOT / "docs" / "RUNBOOK.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {SECTION}\n")
    section = text[start:text.index("\n## ", start + 1)]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def _run(api: str, token_file: Path) -> subprocess.CompletedProcess[str]:
    # `auth` as the README's "send a job" lines define it: the token read from the stack's file
    auth = "auth() { printf 'Authorization: Bearer %s\\n' \"$(cat \"$TOKEN_FILE\")\"; }\n"
    env = {**os.environ, "API": api, "TOKEN_FILE": str(token_file),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "-c", auth + _lines()], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_runbooks_lines_create_the_job_and_stop_at_a_refused_upload_naming_why(
        tmp_path: Path, moto_endpoint: str, fake_runpod: FakeRunPod, log_lines: LogCapture) -> None:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines,
                        workflows_dir=str(ROOT / "images" / "worker" / "workflows")) as server:
        token = tmp_path / "api_token"
        token.write_text(API_TOKEN)
        ran = _run(server.url, token)
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["status"] == "queued"

        other = tmp_path / "other_stacks_api_token"
        other.write_text("tok-AnotherStacksToken-0000")
        creates = sum('"/api/queue/create"' in line for line in log_lines)
        assert creates >= 1  # the first run's create is logged by its path
        refused = _run(server.url, other)
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr and "KeyError" not in refused.stderr
        assert "upload refused:" in refused.stderr and "missing or wrong bearer token" in refused.stderr
        assert refused.stdout == ""  # no create's answer: none was sent
        assert sum('"/api/queue/create"' in line for line in log_lines) == creates
