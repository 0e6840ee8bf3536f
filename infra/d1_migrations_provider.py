"""D1 migrations as a Pulumi dynamic resource: `migrations/*.sql` applied over D1's REST `/query`.

Built on goldgate.cloudflare's D1 client; applied migrations are recorded in wrangler's
`d1_migrations` table (goldgate.migrations), so `wrangler d1 migrations apply` and this resource
agree, and the text each ran with in goldgate's `goldgate_migration_checksums`, so an applied
migration edited later is refused. Idempotent: a second run applies nothing.
The SQL travels as an input (name -> text) because the provider runs in another process, from a
pickle; deleting the resource never drops schema (deleting the D1 database does that).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dyn
from pulumi.runtime.rpc import UNKNOWN

from goldgate.cloudflare.api import DEFAULT_API_BASE, CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.errors import CloudflareError
from goldgate.migrations import (
    MIGRATIONS_DIR,
    MigrationError,
    apply_with,
    discover,
    edited_after_apply,
    edited_error,
    recorded_checksums,
    sha256,
)
from service.migrate import text_digests

DEFAULT_CLOUDFLARE_API = DEFAULT_API_BASE


def checksums(migrations: Mapping[str, str]) -> dict[str, str]:
    return {name: sha256(sql) for name, sql in sorted(migrations.items())}


def read_migrations(directory: Path = MIGRATIONS_DIR) -> dict[str, str]:
    """name -> SQL for every migration file, validated (wrangler naming, no gaps) at program time."""
    return {m.name: m.sql for m in discover(directory)}


def missing_after_apply(applied: list[str], declared: Mapping[str, str]) -> list[str]:
    """Applied migrations this checkout no longer declares (renamed, deleted, or an older checkout)."""
    return sorted(set(applied) - set(declared))


def unrecorded(recorded: list[str] | None, declared: Mapping[str, str]) -> list[str]:
    """Declared migrations D1 no longer records (refresh saw e.g. a Time Travel restore to before them)."""
    if recorded is None:
        return []
    return sorted(set(declared) - set(recorded))


class D1MigrationsProvider(dyn.ResourceProvider):
    """create/update apply pending migrations; read reports what D1 has recorded (diff re-applies what it lost);
    delete leaves the schema."""

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        applied = self._apply(props)
        return dyn.CreateResult(id_=f"{props['database_id']}/migrations", outs=self._outs(props, applied))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        declared = news.get("migrations") or {}
        new_sums = checksums(declared)
        old_sums = olds.get("checksums") or {}
        # Every sha256 a text may have been recorded with (line ends as read, or as LF): a CRLF checkout's state
        # is the same text as an LF one's.
        digests = {name: text_digests(sql) for name, sql in declared.items()}
        edited = edited_after_apply(old_sums, digests)
        if not edited and set(new_sums) - set(old_sums):
            # The state vouches only for what the last update that succeeded declared: one that failed midway
            # applied (and D1 recorded) migrations it has no checksum of. Ask D1, as the update would.
            edited = edited_after_apply(_recorded_in_d1(news), digests)
        if edited:
            raise edited_error(edited, "D1")
        # The update would refuse these too (goldgate.migrations.pending), but only midway through `pulumi up`, after
        # resources that do not wait for the schema (the endpoint's new image) changed: refuse them in the preview.
        applied = olds.get("recorded")
        missing = missing_after_apply(applied if applied is not None else list(old_sums), new_sums)
        if missing:
            added = sorted(set(new_sums) - set(old_sums))
            renamed = f" (renamed to {', '.join(added)}?)" if added else ""
            raise MigrationError(f"D1 {olds.get('database_id')} records migration(s) {', '.join(missing)} that this "
                                 f"checkout does not declare{renamed}: restore them under their applied names, or "
                                 "deploy from a checkout that includes them")
        # api_token too: a rotated token must reach the state, or `pulumi refresh` reads with the revoked one.
        changed = [k for k in ("database_id", "account_id", "api_base", "api_token") if olds.get(k) != news.get(k)]
        if new_sums != old_sums or unrecorded(olds.get("recorded"), new_sums):
            changed.append("migrations")
        return dyn.DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(outs=self._outs(news, self._apply(news)))

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        try:
            with _D1(props) as execute:
                rows = execute("SELECT name FROM sqlite_master WHERE type='table' AND name='d1_migrations'", [])
                recorded = [r["name"] for r in execute("SELECT name FROM d1_migrations ORDER BY id", [])] if rows else []
        except _QueryFailed as exc:
            if exc.status == 404:  # the database is gone, and its schema with it
                return dyn.ReadResult(id_="", outs={})
            raise MigrationError(f"cannot read the applied migrations of D1 {props['database_id']}: {exc}") from None
        outs = dict(props)
        outs["recorded"] = recorded
        return dyn.ReadResult(id_=id_, outs=outs)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Deliberately nothing: dropping tables here would destroy data the database still serves.
        return None

    def _apply(self, props: Mapping[str, Any]) -> list[str]:
        migrations = props.get("migrations") or {}
        with tempfile.TemporaryDirectory(prefix="goldgate-migrations-") as tmp:
            for name, sql in migrations.items():
                (Path(tmp) / name).write_text(sql, encoding="utf-8")
            discover(Path(tmp))  # refuse misnamed or gapped files before touching D1 at all
            try:
                with _D1(props) as execute:
                    return apply_with(execute, Path(tmp))
            except _QueryFailed as exc:  # before any migration ran: reading or creating d1_migrations
                raise MigrationError(f"cannot read the applied migrations of D1 {props['database_id']}: {exc}") from None

    @staticmethod
    def _outs(props: Mapping[str, Any], applied: list[str]) -> dict[str, Any]:
        outs = dict(props)
        outs["applied"] = applied
        outs["checksums"] = checksums(props.get("migrations") or {})
        outs["recorded"] = sorted(outs["checksums"])
        return outs


def _recorded_in_d1(props: Mapping[str, Any]) -> dict[str, str]:
    """What D1 recorded of the applied migrations' text, or {} when it cannot say now (a preview before the database
    exists, an outage): the update reads it again before it applies anything, and refuses there."""
    if any(props.get(k) in (None, UNKNOWN) for k in ("account_id", "database_id", "api_token")) or \
            props.get("api_base") == UNKNOWN:
        return {}
    try:
        with _D1(props) as execute:
            return recorded_checksums(execute)
    except (_QueryFailed, CloudflareError):  # CloudflareError: a token the client refuses before any call
        return {}


class _QueryFailed(Exception):
    """A D1 call failed. Not a GoldgateError on purpose: apply_with then names the migration that failed."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class _D1:
    """`with _D1(props) as execute:` an `execute(sql, params) -> rows` over one database, closed after."""

    def __init__(self, props: Mapping[str, Any]) -> None:
        self._api = CloudflareApi(props["api_token"], props.get("api_base") or DEFAULT_CLOUDFLARE_API)
        self._client = D1Client(self._api, props["account_id"])
        self._database_id = props["database_id"]

    def __enter__(self) -> Callable[[str, list], list[dict[str, Any]]]:
        return self.execute

    def execute(self, sql: str, params: list) -> list[dict[str, Any]]:
        try:
            return self._client.query(self._database_id, sql, params)
        except CloudflareError as exc:
            raise _QueryFailed(str(exc), exc.status) from None

    def __exit__(self, *_: object) -> None:
        self._api.close()


class D1Migrations(dyn.Resource, module="cloudflare", name="D1Migrations"):
    """The D1 schema of one database, kept at `migrations/*.sql`."""

    applied: pulumi.Output[list]
    checksums: pulumi.Output[dict]
    recorded: pulumi.Output[list]

    def __init__(self, name: str, *, account_id: pulumi.Input[str], database_id: pulumi.Input[str],
                 api_token: pulumi.Input[str], migrations: Mapping[str, str],
                 api_base: str = DEFAULT_CLOUDFLARE_API, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"account_id": account_id, "database_id": database_id, "api_token": pulumi.Output.secret(api_token),
                 "api_base": api_base, "migrations": dict(migrations),
                 "applied": None, "checksums": None, "recorded": None}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["api_token"]))
        super().__init__(D1MigrationsProvider(), name, props, opts)
