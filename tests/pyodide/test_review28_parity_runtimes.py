"""The two runtimes answer alike, end to end: one scenario (every route of docs/openapi.json, good and bad input)
sent as raw HTTP/1.1 to the local server (`python -m service.local_server`: uvicorn, SQLite, moto) and to the
Worker's real upload under real Pyodide (`run_worker.mjs --serve`: sql.js D1, the R2 stand-in, real fetch), both
calling one fake RunPod. Status, headers, JSON bodies (types included), the log lines each request printed and the
calls made to RunPod must match once ids, signatures and times are masked (runtime_parity.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import runtime_parity
from test_worker_in_pyodide import node  # noqa: F401 - the fixture: node with the pinned Pyodide installed

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("pyodide", ["pyodide", "pyodide-py313"])
def test_both_runtimes_answer_every_step_alike(pyodide, node, tmp_path):  # noqa: F811
    report = runtime_parity.run_both(REPO, pyodide, tmp_path)
    differ = [f"{r['label']} ({r['request']['method']} {r['request']['target']}):\n    " + "\n    ".join(r["diffs"])
              for r in report if r["diffs"]]
    assert len(report) > 100 and not differ, "\n".join(differ)
