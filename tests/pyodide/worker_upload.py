"""The input of run_worker.mjs: the API Worker's upload exactly as `pulumi up` builds it
(infra.worker_bundle.collect), the D1 migrations Pulumi applies, and the Worker's bindings.

`python tests/pyodide/worker_upload.py > upload.json && node tests/pyodide/run_worker.mjs upload.json`
runs the scenario by hand (from the repository root, with the venv's python).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "service")]  # for the by-hand run; pytest has both already

from service_testkit import API_TOKEN, RUNPOD_KEY, WEBHOOK_SECRET

from goldgate.migrations import discover
from infra.worker_bundle import collect

RUNPOD_BASE = "https://runpod.invalid/v2/ep-pyodide"
PUBLIC_BASE = "https://api.example"


def bindings(**overrides: str) -> dict[str, str]:
    """The Worker's secret_text and plain_text bindings (infra/components/api.py names them)."""
    env = {"API_TOKEN": API_TOKEN, "WEBHOOK_SECRET": WEBHOOK_SECRET, "RUNPOD_API_KEY": RUNPOD_KEY,
           "STACK": "staging", "RUNPOD_ENDPOINT_BASE": RUNPOD_BASE, "RUNPOD_ENDPOINT_ID": "ep-pyodide",
           "PUBLIC_BASE_URL": PUBLIC_BASE, "WORKFLOW_VERSION": "sdxl-txt2img@1.0.0",
           "WORKER_IMAGE_TAG": "", "EXECUTION_TIMEOUT_MS": "600000", "TTL_MS": "86400000",
           "MAX_BODY_BYTES": "65536", "SIGNED_URL_TTL_S": "3600", "GPU_TYPE": "NVIDIA L4", "GPU_COUNT": "2",
           "PRICE_PER_GPU_SECOND": "0.0005", "RETENTION_KEEP_DAYS": "30"}
    env.update(overrides)
    return env


def upload_input(**overrides: str) -> dict[str, Any]:
    bundle = collect()
    return {
        "bundle": {"main_module": bundle.main_module, "main_content": bundle.main_content,
                   "files": [{"name": f.name, "content_type": f.content_type, "base64": f.base64}
                             for f in bundle.files]},
        "migrations": [{"name": m.name, "sql": m.sql} for m in discover()],
        "env": bindings(**overrides),
    }


def run_probe(probe: str, runtime: str, scratch: Path) -> Any:
    """`probe`'s last expression (JSON text), run by run_worker.mjs under `runtime` (a Pyodide of node_modules:
    "pyodide", "pyodide-py313") beside the Worker's upload; `scratch` an empty directory for its files."""
    from ci_policy import require  # pytest's: this module also runs by hand, without tests/ on the path

    node = shutil.which("node")
    require(node is not None, "node (runs Pyodide for tests/pyodide)")
    here = Path(__file__).resolve().parent
    require((here / "node_modules" / runtime / "pyodide.mjs").is_file(), "tests/pyodide's node_modules")
    (scratch / "upload.json").write_text(json.dumps(upload_input()))
    (scratch / "probe.py").write_text(probe)
    done = subprocess.run([node, str(here / "run_worker.mjs"), "--probe", str(scratch / "probe.py"),
                           str(scratch / "upload.json"), runtime],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["result"]


if __name__ == "__main__":
    json.dump(upload_input(), sys.stdout)
