"""goldgate's D1 migrations and the real `wrangler d1 migrations` on one database, both ways round.

The migrations keep wrangler's naming and its `d1_migrations` table so that a team may mix `wrangler d1 migrations
apply` with goldgate's runners (the local stack's, goldgate.migrations.apply_sqlite; the service's,
service.migrate.apply_sqlite; the cloud's, goldgate.migrations.apply_with over D1's /query). Here wrangler itself
(tests/pyodide's pinned devDependency; `npm ci` here) migrates a local D1 (workerd's, the SQLite file it keeps under
--persist-to), offline: wrangler talks to its workerd over loopback only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ci_policy import needs

from goldgate import migrations as gm
from service import migrate as sm
from service.sqltext import split_sql

HERE = Path(__file__).resolve().parent
WRANGLER = HERE / "node_modules" / "wrangler"
NODE = shutil.which("node")


def _node_runs_wrangler() -> bool:
    """wrangler is installed, and this node is as new as its package.json's `engines` asks (wrangler refuses an
    older one before it does anything: Debian 12's own nodejs, 18, is too old)."""
    if NODE is None or not (WRANGLER / "bin" / "wrangler.js").is_file():
        return False
    engines = json.loads((WRANGLER / "package.json").read_text())["engines"]["node"]
    wanted = re.fullmatch(r">=\s*(\d+)\.(\d+)\.(\d+)", engines)
    done = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=False, timeout=60)
    have = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)\s*", done.stdout)
    return bool(wanted and have) and tuple(map(int, have.groups())) >= tuple(map(int, wanted.groups()))


pytestmark = needs(_node_runs_wrangler(), "wrangler and a node it runs on (tests/pyodide's devDependency: `npm ci` "
                                          "there; its package.json's engines.node)")

MIGRATIONS = sorted(gm.MIGRATIONS_DIR.glob("*.sql"))
NAMES = [path.name for path in MIGRATIONS]
NOTHING_PENDING = "No migrations to apply"


class LocalD1:
    """A wrangler project whose one D1 database, `goldgate`, reads its migrations from `migrations`."""

    def __init__(self, root: Path, migrations: list[Path]) -> None:
        self.root = root
        self.migrations = root / "migrations"
        self.migrations.mkdir(parents=True)
        self.add(migrations)
        self.state = root / "state"
        (root / "wrangler.toml").write_text(
            'name = "goldgate-migrations-check"\ncompatibility_date = "2025-01-01"\n\n[[d1_databases]]\n'
            'binding = "DB"\ndatabase_name = "goldgate"\ndatabase_id = "00000000-0000-0000-0000-000000000000"\n'
            'migrations_dir = "migrations"\n')
        home, tmp = root / "home", root / "tmp"
        home.mkdir()
        tmp.mkdir()
        # No account, no prompt (CI=true: wrangler's non-interactive mode), no metrics nor error reports, and
        # everything it writes under `root`: its config, logs, cache and dev registry under HOME; and the OS temp
        # dir, where miniflare keeps a `miniflare-<hash>` directory it leaves behind and the update check its
        # `update-check` cache. wrangler has no switch for that check (src/update-check.ts): the hidden banner
        # skips the one every command makes, and TMPDIR keeps the others' (an error's hint, a warning's) inside.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "WRANGLER_", "CF_"))}
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
                        XDG_DATA_HOME=str(home / ".local" / "share"), TMPDIR=str(tmp), TMP=str(tmp), TEMP=str(tmp),
                        CI="true", NO_COLOR="1", WRANGLER_SEND_METRICS="false", WRANGLER_SEND_ERROR_REPORTS="false",
                        WRANGLER_HIDE_BANNER="true", WRANGLER_LOG_PATH=str(home / "wrangler-logs"),
                        WRANGLER_CACHE_DIR=str(home / "wrangler-cache"),
                        WRANGLER_REGISTRY_PATH=str(home / "wrangler-registry"))

    def add(self, migrations: list[Path]) -> None:
        for path in migrations:
            shutil.copyfile(path, self.migrations / path.name)

    def wrangler(self, *args: str) -> str:
        done = subprocess.run([NODE, str(WRANGLER / "bin" / "wrangler.js"), "d1", *args], cwd=self.root,
                              env=self.env, capture_output=True, text=True, check=False, timeout=180)
        assert done.returncode == 0, (f"wrangler d1 {' '.join(args)} failed:\n"
                                      f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done.stdout

    def local(self, *args: str) -> str:
        return self.wrangler(*args, "goldgate", "--local", "--persist-to", str(self.state))

    def pending(self) -> str:
        return self.local("migrations", "list")

    def apply(self) -> str:
        return self.local("migrations", "apply")

    @property
    def db(self) -> Path:
        """The SQLite file workerd keeps the database in (v3/d1/miniflare-D1DatabaseObject/<id hash>.sqlite)."""
        if not self.state.is_dir():
            self.local("execute", "--command", "SELECT 1")
        found, = (p for p in self.state.glob("v3/d1/miniflare-D1DatabaseObject/*.sqlite")
                  if p.name != "metadata.sqlite")
        return found


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _applied(path: Path) -> list[tuple[int, str, str]]:
    with _connect(path) as conn:
        return conn.execute("SELECT id, name, applied_at FROM d1_migrations ORDER BY id").fetchall()


def _schema(path: Path) -> dict[tuple[str, str], str]:
    """Each table's, index's and trigger's definition, comments and white space left out: wrangler drops every
    comment before D1 runs a file, goldgate keeps those inside a statement, and the two write d1_migrations' DDL
    with other spacing. workerd's own `_cf_*` tables are no part of the schema."""
    with _connect(path) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\'"
                            ).fetchall()
    return {(kind, name): re.sub(r"\s+", "", re.sub(r"--[^\n]*", "", sql or "")) for kind, name, sql in rows}


def _d1_query(conn: sqlite3.Connection) -> Callable[[str, list], list[dict]]:
    """D1's /query as goldgate's cloud runner calls it: a batch of statements in one transaction, the last's rows."""
    def execute(sql: str, params: list) -> list[dict]:
        assert not params
        rows: list[dict] = []
        with conn:
            conn.execute("BEGIN")
            for statement in split_sql(sql + "\n;"):  # the last statement may come without its ";"
                cur = conn.execute(statement)
                rows = [dict(zip([c[0] for c in cur.description or ()], row, strict=True)) for row in cur]
        return rows

    return execute


def _goldgate_migrated(path: Path, directory: Path = gm.MIGRATIONS_DIR) -> Path:
    assert gm.apply_sqlite(path, directory) == sorted(p.name for p in directory.glob("*.sql"))
    return path


def test_goldgate_takes_a_database_wrangler_migrated_as_fully_migrated(tmp_path) -> None:
    d1 = LocalD1(tmp_path / "wrangler", MIGRATIONS)
    d1.apply()
    applied = _applied(d1.db)
    # every file, in number order, one row each as wrangler's DDL defines it: id, the file name, UTC time to the second
    assert [(row_id, name) for row_id, name, _ in applied] == list(enumerate(NAMES, start=1))
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", at) for _, _, at in applied)

    # each of goldgate's runners finds nothing to apply; the first records the sha256 of what wrangler ran
    assert gm.apply_sqlite(d1.db) == []
    with _connect(d1.db) as conn:
        assert sm.apply_sqlite(conn, gm.MIGRATIONS_DIR) == []
        assert gm.apply_with(_d1_query(conn)) == []
        recorded = dict(conn.execute("SELECT name, sha256 FROM goldgate_migration_checksums").fetchall())
    assert recorded == {path.name: gm.sha256(path.read_text()) for path in MIGRATIONS}
    assert _applied(d1.db) == applied
    # the same schema as goldgate's own runner makes, and wrangler is not put out by goldgate's checksum table
    assert _schema(d1.db) == _schema(_goldgate_migrated(tmp_path / "goldgate.sqlite"))
    assert NOTHING_PENDING in d1.pending()


def test_wrangler_finds_nothing_pending_in_a_database_goldgate_migrated(tmp_path) -> None:
    migrated = _goldgate_migrated(tmp_path / "goldgate.sqlite")
    d1 = LocalD1(tmp_path / "wrangler", MIGRATIONS)
    pending = d1.pending()  # on a fresh database: every file, in number order
    positions = [pending.find(name) for name in NAMES]
    assert -1 not in positions and positions == sorted(positions)
    target = d1.db  # workerd's database, replaced by goldgate's (the local stack's database file, as it is)
    for stale in (target, target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(migrated, target)
    assert NOTHING_PENDING in d1.pending()
    assert [name for _, name, _ in _applied(target)] == NAMES


def test_half_goldgate_half_wrangler_either_way_round_is_one_migrated_database(tmp_path) -> None:
    first, rest = MIGRATIONS[:5], MIGRATIONS[5:]
    # goldgate applied 0001-0005 (a checkout of then), wrangler the rest
    d1 = LocalD1(tmp_path / "goldgate-first", first)
    _goldgate_migrated(d1.db, d1.migrations)
    d1.add(rest)
    d1.apply()
    assert gm.apply_sqlite(d1.db, d1.migrations) == []
    assert [name for _, name, _ in _applied(d1.db)] == NAMES
    # wrangler applied 0001-0005, goldgate the rest
    other = LocalD1(tmp_path / "wrangler-first", first)
    other.apply()
    other.add(rest)
    assert gm.apply_sqlite(other.db, other.migrations) == [p.name for p in rest]
    assert NOTHING_PENDING in other.pending()
    assert [name for _, name, _ in _applied(other.db)] == NAMES
    assert _schema(d1.db) == _schema(other.db) == _schema(_goldgate_migrated(tmp_path / "goldgate.sqlite"))


def test_a_migration_wrangler_created_and_applied_is_one_goldgate_takes(tmp_path) -> None:
    d1 = LocalD1(tmp_path / "wrangler", MIGRATIONS)
    d1.apply()
    d1.wrangler("migrations", "create", "goldgate", "Add cancel-reason")
    [created] = sorted(set(d1.migrations.glob("*.sql")) - {d1.migrations / name for name in NAMES})
    assert created.name == f"{len(NAMES) + 1:04d}_Add_cancel-reason.sql"  # wrangler keeps the case and the hyphen
    with created.open("a") as out:
        out.write("ALTER TABLE jobs ADD COLUMN cancel_reason TEXT;\n")
    d1.apply()
    assert gm.apply_sqlite(d1.db, d1.migrations) == []
    with _connect(d1.db) as conn:
        assert sm.apply_sqlite(conn, d1.migrations) == []
        assert "cancel_reason" in [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
    # and goldgate applies it where wrangler has not
    assert _goldgate_migrated(tmp_path / "goldgate.sqlite", d1.migrations)
