"""`goldgate metrics --spend` lists each named client's spend today as the service keeps it (client_daily_spend),
biggest first and at most 100 of them (service.spend.MAX_CLIENTS_SHOWN, as GET /api/metrics): a day whose rows name
more clients (clients removed and added within it) says the list stops there, so a reader does not take it for all."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from ops_fixtures import build_stack_db

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


def _home_with_clients(tmp_path: Path, count: int) -> Path:
    home = tmp_path / "home"
    db = build_stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO daily_spend (day, usd, jobs) VALUES (?, 80, 200)", (today,))
        conn.executemany("INSERT INTO client_daily_spend (day, client, usd, jobs) VALUES (?, ?, ?, 1)",
                         [(today, f"c{n:03d}", (n + 1) / 100) for n in range(count)])
    conn.close()
    return home


def _client_lines(text: str) -> tuple[str, list[str]]:
    lines = text.split("clients' spend today", 1)[1].splitlines()
    return lines[0], [line.strip() for line in lines[1:] if line.startswith("  c")]


def test_a_day_of_more_clients_than_shown_says_the_list_stops_at_100(tmp_path: Path, capsys) -> None:
    home = _home_with_clients(tmp_path, 150)
    assert main(["metrics", "staging", "--home", str(home), "--spend", "--json"]) == 0
    clients = json.loads(capsys.readouterr().out)["daily_spend"]["clients"]
    assert len(clients) == 100 and clients[0]["client"] == "c149" and clients[-1]["client"] == "c050"
    assert main(["metrics", "staging", "--home", str(home), "--spend"]) == 0
    head, rows = _client_lines(capsys.readouterr().out)
    assert "the 100 biggest first (the list stops at 100: more clients may have spent today):" in head, head
    assert len(rows) == 100 and rows[0] == "c149: $1.5 over 1 job", rows[:2]


def test_a_day_of_fewer_clients_lists_them_all_without_the_note(tmp_path: Path, capsys) -> None:
    home = _home_with_clients(tmp_path, 3)
    assert main(["metrics", "staging", "--home", str(home), "--spend"]) == 0
    head, rows = _client_lines(capsys.readouterr().out)
    assert head.endswith(", biggest first:") and "stops" not in head, head
    assert rows == ["c002: $0.03 over 1 job", "c001: $0.02 over 1 job", "c000: $0.01 over 1 job"]
