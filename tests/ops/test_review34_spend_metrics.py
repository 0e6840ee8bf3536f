"""`goldgate metrics` shows today's (UTC) spend, its jobs and the stack's api.daily_spend_limit_usd ("no daily spend
limit" without one), in the text's first line and in --json: locally off the stack's SQLite, and with --target cloud
off D1 over the Cloudflare API, judged by the cloud stack file's limit."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import yaml
from ops_fixtures import build_stack_db
from test_review14_w1_cloudflare_api_base import TOKEN, _stack_file, d1, no_way_out  # noqa: F401 (fixtures)

from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.local.platform import LocalPlatform


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def test_local_metrics_show_todays_spend_and_no_limit(tmp_path: Path, capsys) -> None:
    home = tmp_path / "home"
    db = build_stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    conn = sqlite3.connect(db)
    with conn:  # as the service counts the jobs that ended today, and one day before
        conn.execute("INSERT INTO daily_spend (day, usd, jobs) VALUES (?, 12.345, 7), ('2000-01-01', 99, 9)",
                     (_today(),))
    conn.close()
    assert main(["metrics", "staging", "--home", str(home), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["daily_spend"] == {"day": _today(), "spend_usd": 12.345, "jobs": 7, "limit_usd": None,
                                     "limit_known": True, "client_limit_usd": None, "client_limit_known": True,
                                     "clients": []}
    assert main(["metrics", "staging", "--home", str(home)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert f"today ({_today()} UTC): spend $12.35 over 7 jobs ended, no daily spend limit" in first, first


def test_cloud_metrics_show_todays_spend_against_the_stack_files_limit(d1, tmp_path, monkeypatch,  # noqa: F811
                                                                       capsys) -> None:
    standin, database = d1
    with CloudflareApi(TOKEN, standin.api_base) as api:
        D1Client(api, standin.account_id, poll_interval_s=0.0).query(
            database, "INSERT INTO daily_spend (day, usd, jobs) VALUES (?, 251.5, 40)", [_today()])
    stacks = _stack_file(tmp_path / "stacks", standin.account_id, standin.api_base)
    path = stacks / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["goldgate:spec"]["api"]["daily_spend_limit_usd"] = 250
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    args = ["metrics", "staging", "--target", "cloud", "--stacks-dir", str(stacks), "--database-id", database,
            "--home", str(tmp_path / "home")]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["daily_spend"] == {"day": _today(), "spend_usd": 251.5, "jobs": 40, "limit_known": True,
                                                                  "limit_usd": 250.0, "client_limit_usd": None,
                                                                  "client_limit_known": True, "clients": []}
    assert main(args) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "spend $251.50 over 40 jobs ended, daily spend limit $250.00 (api.daily_spend_limit_usd): REACHED" in first
