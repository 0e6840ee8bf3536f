"""A start refused for its config (exit 2) says why before importing botocore and httpx (about 0.5 s of CPU
between them): the refusal comes early and costs what reading the config costs, with the same message as
before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from service_testkit import ROOT, LocalServer, check_log_lines

# `python -m service.local_server` as run by the stack host, then the modules the refused start had imported.
_RUN = """
import runpy, sys
sys.argv = ["service.local_server", "--config", sys.argv[1]]
try:
    runpy.run_module("service.local_server", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    code = stop.code
heavy = sorted(name for name in ("botocore", "boto3", "httpx") if name in sys.modules)
print(f"exit={code} heavy={','.join(heavy)}", file=sys.stderr)
"""
_NOWHERE = "http://127.0.0.1:9"  # never reached: every start here is refused first


def _config(tmp_path: Path, case: str) -> tuple[Path, str]:
    """The config file for `case` and a text its refusal must show."""
    if case == "not JSON":
        path = tmp_path / "service.json"
        path.write_text('{"stack": "test", "api_token": ')  # cut off mid-write
        return path, "is not valid JSON"
    if case == "a bad value":
        return LocalServer(tmp_path, _NOWHERE, _NOWHERE, max_body_bytes="lots").config_path, \
            "max_body_bytes must be an integer"
    if case == "a missing key":
        return LocalServer(tmp_path, _NOWHERE, _NOWHERE, s3_bucket="").config_path, "s3_bucket"
    if case == "a db that cannot be opened":
        path = str(tmp_path / "no" / "such" / "dir" / "service.sqlite")
        return LocalServer(tmp_path, _NOWHERE, _NOWHERE, db_path=path).config_path, path
    if case == "a failing migration":
        migrations = tmp_path / "migrations"
        migrations.mkdir()
        (migrations / "0001_init.sql").write_text("CREATE TABLE jobs (id TEXT);\n"
                                                  "INSERT INTO missing VALUES (1);\n")
        return LocalServer(tmp_path, _NOWHERE, _NOWHERE, apply_migrations_from=str(migrations)).config_path, \
            "migration 0001_init.sql failed"
    workflows = tmp_path / "no-workflows-here"
    return LocalServer(tmp_path, _NOWHERE, _NOWHERE, workflows_dir=str(workflows)).config_path, \
        f"workflows directory {workflows} does not exist"


@pytest.mark.parametrize("case", ["not JSON", "a bad value", "a missing key", "a db that cannot be opened",
                                  "a failing migration", "a missing workflows directory"])
def test_a_refused_config_exits_2_with_its_message_before_botocore_or_httpx_is_imported(tmp_path, case):
    config_path, says = _config(tmp_path, case)
    proc = subprocess.run([sys.executable, "-c", _RUN, str(config_path)], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "service: error: " in proc.stderr and says in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    check_log_lines(lines)
    assert [json.loads(line)["event"] for line in lines] == ["service.bad_config"]
    assert proc.stderr.splitlines()[-1] == "exit=2 heavy=", proc.stderr
