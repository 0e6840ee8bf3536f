"""D1 migrations: plan which `migrations/NNNN_name.sql` files are pending and apply them.

The same files migrate D1 in the cloud (over the D1 REST /query API, from infra) and SQLite on
the local target. Applied migrations are recorded in wrangler's own table, `d1_migrations(id,
name, applied_at)`, so `wrangler d1 migrations apply` stays compatible with what goldgate did.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from goldgate.errors import GoldgateError
from service import migrate as local_migrate

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# wrangler's DDL for its tracking table (wrangler/src/d1/migrations/helpers.ts).
TRACKING_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS d1_migrations("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "name TEXT UNIQUE, "
    "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)"
)


class MigrationError(GoldgateError):
    """A migration file is misnamed, out of sequence, or failed to apply."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in order; refuses misnamed files and gaps in the numbering."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"migration file {path.name} does not follow wrangler naming NNNN_name.sql "
                "(four digits, lowercase words)"
            )
        expected = len(found) + 1
        if int(match.group(1)) != expected:
            raise MigrationError(f"migration {path.name} is out of sequence: expected number {expected:04d}")
        found.append(Migration(path.name, path.read_text(encoding="utf-8")))
    return found


def pending(all_migrations: Iterable[Migration], applied: Iterable[str]) -> list[Migration]:
    """The migrations not yet applied, refusing a database that knows migrations we do not."""
    known = {m.name for m in all_migrations}
    applied_set = set(applied)
    unknown = sorted(applied_set - known)
    if unknown:
        raise MigrationError(
            f"database records migrations this checkout does not have: {', '.join(unknown)}; "
            "deploy from a checkout that includes them"
        )
    return [m for m in all_migrations if m.name not in applied_set]


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements, each without its closing ';' (D1's /query takes them as one batch; SQLite
    one at a time), as the local service's runner splits them (service.migrate.split_statements): both paths give
    SQLite the same statements, so a database holds the same schema text whichever migrated it."""
    try:
        return local_migrate.split_statements(sql)
    except local_migrate.MigrationError as exc:
        raise MigrationError(str(exc)) from None


def apply_with(execute: Callable[[str, list], list[dict]], directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations through `execute(sql, params) -> rows`; returns the names applied.

    Used for D1 over REST, where each call is its own transaction: the migration's statements
    and its tracking row go in one call so a failure leaves nothing half-recorded.
    """
    execute(TRACKING_TABLE_SQL, [])
    applied = [row["name"] for row in execute("SELECT name FROM d1_migrations ORDER BY id", [])]
    todo = pending(discover(directory), applied)
    for migration in todo:
        body = ";\n".join(split_statements(migration.sql))
        sql = f"{body};\nINSERT INTO d1_migrations (name) VALUES ('{migration.name}');"
        try:
            execute(sql, [])
        except GoldgateError:
            raise
        except Exception as exc:  # the transport's own error type; re-raise with the migration named
            raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
    return [m.name for m in todo]


def apply_sqlite(db: Path | sqlite3.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations to a SQLite database, each in its own transaction."""
    conn = db if isinstance(db, sqlite3.Connection) else sqlite3.connect(db)
    try:
        conn.execute(TRACKING_TABLE_SQL)
        applied = [r[0] for r in conn.execute("SELECT name FROM d1_migrations ORDER BY id")]
        todo = pending(discover(directory), applied)
        for migration in todo:
            # An explicit transaction: Python's sqlite3 opens none before DDL, so `with conn:` would leave the
            # first ALTER of a migration that fails at its second applied and unrecorded, failing every later run.
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO d1_migrations (name) VALUES (?)", (migration.name,))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
        return [m.name for m in todo]
    finally:
        if not isinstance(db, sqlite3.Connection):
            conn.close()
