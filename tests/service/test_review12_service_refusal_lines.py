"""The local service's output is its log: the stack host writes its stdout and stderr to service.jsonl, so a
service that refuses its config says so in schema lines only (a plain line there fails `goldgate checklist`'s
"Logging schema v1" line, and every grep of the logs that parses JSON)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs/logging-schema-v1.json").read_text(encoding="utf-8"))


def test_a_service_refusing_its_config_writes_only_schema_lines_where_the_stack_host_logs(tmp_path):
    config = tmp_path / "service.json"
    config.write_text(json.dumps({"stack": "staging"}), encoding="utf-8")
    log = tmp_path / "service.jsonl"
    with log.open("w") as out:  # as goldgate/local/stackhost.py spawns it: stderr into the same file
        code = subprocess.run([sys.executable, "-m", "service.local_server", "--config", str(config)], cwd=REPO,
                              stdout=out, stderr=subprocess.STDOUT, timeout=60, check=False).returncode
    assert code == 2
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines
    for text in lines:
        jsonschema.validate(json.loads(text), SCHEMA)
    assert [json.loads(text)["event"] for text in lines] == ["service.bad_config"]
