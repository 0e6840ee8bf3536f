"""`goldgate metrics --spend`'s clients' lines, where session 35's mutation audit found nothing holding them: a day
with no client's row says none (not an empty list), yesterday's rows are not today's, a figure reads as rounded (not a
float's tail), a client whose spend equals its own limit is marked REACHED (its creates are refused at it), and a
limit that cannot be read is said to be unknown, not absent."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ops_fixtures import build_stack_db

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.ops.metrics_report import client_spend_text


def _home(tmp_path: Path, rows: list[tuple[str, str, float, int]]) -> Path:
    home = tmp_path / "home"
    db = build_stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("INSERT INTO client_daily_spend (day, client, usd, jobs) VALUES (?, ?, ?, ?)", rows)
    conn.close()
    return home


def _clients_text(home: Path, capsys) -> str:
    assert main(["metrics", "staging", "--home", str(home), "--spend"]) == 0
    return "clients' spend today" + capsys.readouterr().out.split("clients' spend today", 1)[1]


def test_a_day_with_no_clients_row_says_none(tmp_path: Path, capsys) -> None:
    text = _clients_text(_home(tmp_path, []), capsys)
    assert text.rstrip().endswith(": none (no job of a named client ended today)"), text


def test_only_todays_rows_are_listed_and_their_figures_read_rounded(tmp_path: Path, capsys) -> None:
    now = datetime.now(UTC)
    today, yesterday = now.strftime("%Y-%m-%d"), (now - timedelta(days=1)).strftime("%Y-%m-%d")
    home = _home(tmp_path, [(yesterday, "bob", 5.0, 9), (today, "alice", 0.1 + 0.2, 2)])
    text = _clients_text(home, capsys)
    assert "alice: $0.3 over 2 jobs" in text and "bob" not in text, text
    assert main(["metrics", "staging", "--home", str(home), "--spend", "--json"]) == 0
    clients = json.loads(capsys.readouterr().out)["daily_spend"]["clients"]
    assert clients == [{"client": "alice", "spend_usd": 0.3, "jobs": 2}]


def test_a_client_at_exactly_its_own_limit_is_marked_reached() -> None:
    text = client_spend_text({"client_limit_usd": 0.002, "clients": [
        {"client": "alice", "spend_usd": 0.002, "jobs": 2}, {"client": "bob", "spend_usd": 0.0019, "jobs": 1}]})
    alice, bob = text.splitlines()[1:]
    assert alice.endswith("REACHED, its creates are refused 429 client_spend_limit_reached until 00:00 UTC"), alice
    assert "REACHED" not in bob, bob


def test_a_client_limit_that_cannot_be_read_is_unknown_not_absent() -> None:
    unknown = client_spend_text({"client_limit_usd": None, "client_limit_known": False, "clients": []})
    assert "own daily spend limit unknown: the stack's settings cannot be read" in unknown, unknown
    unset = client_spend_text({"client_limit_usd": None, "client_limit_known": True, "clients": []})
    assert "not set" in unset and "unknown" not in unset, unset
