"""The migrations line after goldgate was upgraded under running local stacks.

A host applies the migrations when it starts, so one an older goldgate started keeps serving its database
without the newer ones; `goldgate up` and `goldgate release` refuse until it is restarted (docs/RUNBOOK.md,
"After upgrading goldgate"). The checklist must say the same, with the one command that fixes it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform

pytestmark = pytest.mark.usefixtures("scan_once")  # checklist runs scan service/ once (conftest.py)

ADDED = "0002_idempotency_keys.sql"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    # One home for both tests: the first ends with STAGING up on a migrated database, which is where the
    # second starts (its `up staging` then finds it serving, as `goldgate up` is idempotent), instead of a
    # second start.
    p = LocalPlatform(tmp_path_factory.mktemp("upgraded") / "home")
    yield p
    for stack in ("staging", "prod"):
        p.down(stack)


def _as_before(db: Path) -> None:
    """The database as the goldgate before migration 0002 left it (what an older host still serves)."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE idempotency_keys")
        conn.execute("DELETE FROM d1_migrations WHERE name = ?", (ADDED,))
    conn.close()


def _migrations_line(capsys, platform: LocalPlatform, stack: str) -> dict:
    main(["checklist", stack, "--home", str(platform.home), "--offline", "--json"])
    return next(c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] == "db_migrated")


def test_a_stack_an_older_host_still_serves_is_red_with_the_restart_not_the_up_that_refuses(platform, capsys):
    platform.up("staging")
    _as_before(platform.db_path("staging"))
    line = _migrations_line(capsys, platform, "staging")
    assert line["status"] == "fail"
    # `goldgate up staging` refuses a stack whose host is up: the restart is the one command that migrates
    assert line["evidence"] == (f"migrations not applied: {ADDED}; restart the host an older goldgate started on it: "
                                "`goldgate down staging && goldgate up staging` applies them")
    platform.down("staging")
    line = _migrations_line(capsys, platform, "staging")
    assert line["evidence"] == f"migrations not applied: {ADDED}; `goldgate up staging` applies them"
    platform.up("staging")
    assert _migrations_line(capsys, platform, "staging")["status"] == "pass"


def test_staging_is_not_ready_while_prods_older_host_blocks_the_release(platform, capsys):
    # Upgraded, then only STAGING restarted: `goldgate release` refuses at PROD's `up`, so STAGING's checklist
    # must not say READY.
    platform.up("staging")
    platform.up("prod")
    _as_before(platform.db_path("prod"))
    line = _migrations_line(capsys, platform, "staging")
    assert line["status"] == "fail"
    assert line["evidence"] == (f"prod's running host serves a database without {ADDED}, so `goldgate release` "
                                "refuses to start; restart the host an older goldgate started on it: "
                                "`goldgate down prod && goldgate up prod` applies them")
    platform.down("prod")  # a stopped PROD is migrated by the `goldgate up` the release runs first
    assert _migrations_line(capsys, platform, "staging")["status"] == "pass"
    platform.up("prod")
    assert _migrations_line(capsys, platform, "staging")["status"] == "pass"
