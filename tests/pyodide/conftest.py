"""The Worker-in-Pyodide test uses tests/service's kit: its autouse `log_lines` fixture checks every
line handed to it against docs/logging-schema-v1.json (and for secrets) when the test ends.
`probes` is the D1 stand-in's answers to the edge calls run_worker.mjs's `--d1-probes` makes (node and sql.js,
no Pyodide), read by test_review13_d1_standin.py and test_review14_v3_d1_bind.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import worker_upload  # noqa: F401 - puts tests/service on sys.path
from ci_policy import require
from service_testkit import log_lines

__all__ = ["log_lines"]

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def probes() -> dict:
    node = shutil.which("node")
    require(node is not None, "node (runs tests/pyodide's D1 stand-in)")
    require((HERE / "node_modules" / "sql.js").is_dir(), "tests/pyodide's node_modules (`npm ci` there)")
    done = subprocess.run([node, str(HERE / "run_worker.mjs"), "--d1-probes"], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)
