"""Gaps a mutation audit of goldgate/ops/metrics_report.py found in `goldgate metrics`' daily spend line: a stack
whose spend lands exactly on its limit is REACHED (the service refuses creates at the limit, not only over it), and a
database not migrated to 0009 yet (no daily_spend table) still gets its report, its day's spend said unknown."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml
from ops_fixtures import build_stack_db
from test_review14_w1_cloudflare_api_base import TOKEN, _stack_file, d1, no_way_out  # noqa: F401 (fixtures)
from test_review34_spend_metrics import _today

from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.local.platform import LocalPlatform


def test_a_spend_exactly_at_the_limit_is_reached(d1, tmp_path, monkeypatch, capsys) -> None:  # noqa: F811
    standin, database = d1
    with CloudflareApi(TOKEN, standin.api_base) as api:
        D1Client(api, standin.account_id, poll_interval_s=0.0).query(
            database, "INSERT INTO daily_spend (day, usd, jobs) VALUES (?, 250, 1)", [_today()])
    stacks = _stack_file(tmp_path / "stacks", standin.account_id, standin.api_base)
    path = stacks / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["goldgate:spec"]["api"]["daily_spend_limit_usd"] = 250
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    assert main(["metrics", "staging", "--target", "cloud", "--stacks-dir", str(stacks), "--database-id", database,
                 "--home", str(tmp_path / "home")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert ("spend $250.00 over 1 job ended, daily spend limit $250.00 (api.daily_spend_limit_usd): REACHED, creates "
            "are refused 429 spend_limit_reached until 00:00 UTC") in first, first


def test_a_database_without_the_daily_spend_table_still_gets_its_report(tmp_path: Path, capsys) -> None:
    home = tmp_path / "home"
    db = build_stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    conn = sqlite3.connect(db)
    with conn:  # as a database from before migration 0009 is
        conn.execute("DROP TABLE daily_spend")
    conn.close()
    assert main(["metrics", "staging", "--home", str(home)]) == 0
    out, err = capsys.readouterr()
    assert "today's spend: unknown (the database has no daily_spend table: migration 0009 not applied yet)" in \
        out.splitlines()[0], (out, err)
    assert main(["metrics", "staging", "--home", str(home), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"]["count"] == 5 and report["daily_spend"] is None
