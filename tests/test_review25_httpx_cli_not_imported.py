"""Every goldgate process that talks HTTP imported httpx's own command line with httpx (click, rich and pygments):
about 0.1 s of CPU per `goldgate status`, per stack host, for a command line goldgate never runs. Now goldgate's
package marks it absent, and httpx works as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys
import goldgate.commands.local  # noqa: F401 -- the command modules import httpx
import httpx

transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"path": request.url.path}))
with httpx.Client(transport=transport) as client:
    answer = client.get("http://127.0.0.1/healthz").json()
print(json.dumps({"loaded": sorted(m for m in ("httpx._main", "rich", "pygments") if sys.modules.get(m)),
                  "answer": answer}))
"""


def test_goldgate_imports_httpx_without_its_command_line_and_httpx_still_works() -> None:
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr
    probe = json.loads(run.stdout)
    assert probe["answer"] == {"path": "/healthz"}
    assert probe["loaded"] == [], f"imported for httpx's command line: {probe['loaded']}"
