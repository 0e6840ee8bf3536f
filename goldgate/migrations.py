"""D1 migrations: plan which `migrations/NNNN_name.sql` files are pending and apply them.

The same files migrate D1 in the cloud (over the D1 REST /query API, from infra) and SQLite on
the local target. Applied migrations are recorded in wrangler's own table, `d1_migrations(id,
name, applied_at)`, so `wrangler d1 migrations apply` stays compatible with what goldgate did. The
sha256 of the text each one ran with (line ends read as LF) goes, in the same transaction, to a
table of goldgate's own (`goldgate_migration_checksums`, which wrangler ignores): an applied
migration edited later is refused by name, whatever state the Pulumi stack kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from goldgate.errors import GoldgateError
from service import migrate as local_migrate

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The names `wrangler d1 migrations create` writes (case and hyphens kept), as the local runner reads them.
_NAME = local_migrate.NAME

# wrangler's DDL for its tracking table (wrangler/src/d1/migrations/helpers.ts), and goldgate's record of the text
# each applied migration ran with, created by the runners (not a numbered migration: the record must exist before the
# first migration runs). A record holds for the d1_migrations row it was written with (its id; AUTOINCREMENT never
# reuses one): a migration undone by hand and applied again by wrangler is not measured against the text it had
# before. No `*_at` column: the DR drill reads the newest of those as the time of the last data write. Defined once,
# in the local service's runner (service/ imports nothing of goldgate), so both runners make the same tables.
TRACKING_TABLE_SQL = local_migrate.TRACKING_TABLE_SQL
CHECKSUM_TABLE_SQL = local_migrate.CHECKSUM_TABLE_SQL


class MigrationError(GoldgateError):
    """A migration file is misnamed, out of sequence, or failed to apply."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return sha256(self.sql)

    @property
    def digests(self) -> frozenset[str]:
        """Every sha256 its applied text may be recorded with (service.migrate.text_digests)."""
        return local_migrate.text_digests(self.sql)


def sha256(sql: str) -> str:
    """The sha256 a migration's text is recorded with (service.migrate.text_sha256: line ends read as LF)."""
    return local_migrate.text_sha256(sql)


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in order; refuses misnamed files and gaps in the numbering."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} does not follow wrangler naming NNNN_name.sql as "
                                 f"goldgate reads it ({local_migrate.NAME_RULE}): {local_migrate.RENAME_HINT}")
        expected = len(found) + 1
        if int(match.group(1)) != expected:
            raise MigrationError(f"migration {path.name} is out of sequence: expected number {expected:04d}")
        found.append(Migration(path.name, _read(path)))
    return found


def _read(path: Path) -> str:
    """A migration file's text, read as the local service's runner reads it: anything but a UTF-8 regular file is
    refused by name (a named pipe in its place would block the read for ever)."""
    try:
        return local_migrate.read_migration(path)
    except local_migrate.MigrationError as exc:
        raise MigrationError(str(exc)) from None


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


def edited_after_apply(recorded: Mapping[str, str], declared: Mapping[str, str | Collection[str]]) -> list[str]:
    """Applied migrations (name -> sha256 they ran with) whose declared text differs: none would run again. A
    declared value is the text's sha256, or every sha256 it may be recorded with (Migration.digests)."""
    return sorted(name for name, digest in recorded.items()
                  if name in declared and digest not in _as_set(declared[name]))


def _as_set(digests: str | Collection[str]) -> Collection[str]:
    return {digests} if isinstance(digests, str) else digests


def edited_error(names: Iterable[str], database: str) -> MigrationError:
    return MigrationError(f"migration(s) {', '.join(names)} changed after being applied; {database} will not re-run "
                          "them: restore the applied text and add a new migration file instead")


def recorded_checksums(execute: Callable[[str, list], list[dict]]) -> dict[str, str]:
    """name -> sha256 the database recorded for each applied migration; read only. Migrations applied by wrangler,
    or before goldgate kept the record, have none until a runner records them as they read then."""
    tables = execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                     "AND name IN ('d1_migrations', 'goldgate_migration_checksums')", [])
    if len(tables) < 2:
        return {}
    rows = execute("SELECT c.name, c.sha256 FROM goldgate_migration_checksums c "
                   "JOIN d1_migrations m ON m.name = c.name AND m.id = c.d1_migrations_id", [])
    return {row["name"]: row["sha256"] for row in rows}


def _record_sql(migration: Migration) -> str:
    """The statement recording the text of an applied migration (its d1_migrations row written already), as
    literals: discover() allows only [A-Za-z0-9_.-] in a name, and a digest is hex."""
    return (f"INSERT OR REPLACE INTO goldgate_migration_checksums (name, sha256, d1_migrations_id) "
            f"SELECT name, '{migration.sha256}', id FROM d1_migrations WHERE name = '{migration.name}'")


def _check(all_migrations: list[Migration], applied: list[str],
           recorded: Mapping[str, str]) -> tuple[list[Migration], list[Migration]]:
    """(pending migrations, applied ones without a recorded sha256), refusing unknown or edited applied ones."""
    todo = pending(all_migrations, applied)
    edited = edited_after_apply(recorded, {m.name: m.digests for m in all_migrations})
    if edited:
        raise edited_error(edited, "the database")
    # The runners record these as they read now: an edit made before that cannot be seen, every later one is.
    applied_set = set(applied)
    unrecorded = [m for m in all_migrations if m.name in applied_set and m.name not in recorded]
    return todo, unrecorded


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

    Used for D1 over REST, where each call is its own transaction: the migration's statements,
    its tracking row and its sha256 go in one call so a failure leaves nothing half-recorded.
    """
    execute(f"{TRACKING_TABLE_SQL};\n{CHECKSUM_TABLE_SQL};", [])
    applied = [row["name"] for row in execute("SELECT name FROM d1_migrations ORDER BY id", [])]
    todo, unrecorded = _check(discover(directory), applied, recorded_checksums(execute))
    if unrecorded:
        execute("".join(f"{_record_sql(m)};\n" for m in unrecorded), [])
    for migration in todo:
        statements = [*_statements_of(migration), f"INSERT INTO d1_migrations (name) VALUES ('{migration.name}')",
                      _record_sql(migration)]
        # Each ';' on a line of its own: after a statement that ends in a "-- comment" it would be part of the
        # comment, and D1 would read that statement and the next as one.
        sql = "".join(f"{statement}\n;\n" for statement in statements)
        try:
            execute(sql, [])
        except Exception as exc:  # the transport's own error (a CloudflareError too): name the migration
            raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
    return [m.name for m in todo]


def _statements_of(migration: Migration) -> list[str]:
    """`split_statements` of one migration, a file cut off mid-statement refused by its name."""
    try:
        return split_statements(migration.sql)
    except MigrationError as exc:
        raise MigrationError(f"{migration.name}: {exc}") from None


def apply_sqlite(db: Path | sqlite3.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations to a SQLite database, each in its own transaction."""
    conn = db if isinstance(db, sqlite3.Connection) else sqlite3.connect(db)
    try:
        conn.execute(TRACKING_TABLE_SQL)
        conn.execute(CHECKSUM_TABLE_SQL)
        applied = [r[0] for r in conn.execute("SELECT name FROM d1_migrations ORDER BY id")]
        todo, unrecorded = _check(discover(directory), applied, recorded_checksums(_rows_of(conn)))
        if unrecorded:
            with conn:
                for migration in unrecorded:
                    conn.execute(_record_sql(migration))
        for migration in todo:
            # Split before the transaction opens: a file cut off mid-statement leaves the database unlocked.
            statements = _statements_of(migration)
            # An explicit transaction: Python's sqlite3 opens none before DDL, so `with conn:` would leave the
            # first ALTER of a migration that fails at its second applied and unrecorded, failing every later run.
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO d1_migrations (name) VALUES (?)", (migration.name,))
                conn.execute(_record_sql(migration))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
        return [m.name for m in todo]
    finally:
        if not isinstance(db, sqlite3.Connection):
            conn.close()


def _rows_of(conn: sqlite3.Connection) -> Callable[[str, list], list[dict]]:
    def execute(sql: str, params: list) -> list[dict]:
        cur = conn.execute(sql, params)
        columns = [c[0] for c in cur.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cur]

    return execute
