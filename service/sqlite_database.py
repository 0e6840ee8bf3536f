"""The Database port over a local SQLite file in WAL mode, with D1's rules (no BEGIN/COMMIT in SQL;
`batch` is one transaction) so code that passes here behaves the same on D1."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.ports import Statement, StatementResult

_TRANSACTION_SQL = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


class SqliteDatabase:
    """Calls run inline on the caller's thread (they take microseconds); a lock serialises threads."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")  # D1 enforces foreign keys
        # Metrics scans read large covering indexes: map the file instead of copying pages.
        self.conn.execute("PRAGMA mmap_size = 1073741824")
        self.conn.execute("PRAGMA cache_size = -65536")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    @staticmethod
    def _check(sql: str) -> None:
        if _TRANSACTION_SQL.match(sql):
            raise ValueError("D1 does not accept BEGIN/COMMIT/ROLLBACK; use Database.batch for a transaction")

    def _run(self, sql: str, params: Sequence[Any]) -> StatementResult:
        cursor = self.conn.execute(sql, tuple(params))
        if cursor.description is None:
            return StatementResult([], max(cursor.rowcount, 0))
        names = [d[0] for d in cursor.description]
        return StatementResult([dict(zip(names, row)) for row in cursor.fetchall()], 0)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._check(sql)
        with self._lock:
            return self._run(sql, params).rows

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._check(sql)
        with self._lock:
            return self._run(sql, params).changes

    async def batch(self, statements: Sequence[Statement]) -> list[StatementResult]:
        for statement in statements:
            self._check(statement.sql)
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                results = [self._run(s.sql, s.params) for s in statements]
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return results
