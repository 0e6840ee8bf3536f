"""The D1 migrations dynamic resource, called directly against the loopback D1 /query stand-in (SQLite)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import pulumi.dynamic
import pytest
from pulumi.runtime.rpc import UNKNOWN

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.migrations import TRACKING_TABLE_SQL, MigrationError
from infra.d1_migrations_provider import D1MigrationsProvider, checksums, read_migrations

TOKEN = "cf-infra-test-token-0123456789"
REPO_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
SECOND = ("0002_job_tags.sql", ("CREATE TABLE job_tags (job_id TEXT NOT NULL, tag TEXT NOT NULL);\n"
                               "CREATE INDEX job_tags_by_tag ON job_tags (tag);\n"))


@pytest.fixture
def d1() -> Iterator[tuple[D1StandIn, D1Client, str]]:
    with D1StandIn(TOKEN) as standin:
        api = CloudflareApi(TOKEN, standin.api_base)
        client = D1Client(api, standin.account_id)
        database_id = client.create_database("goldgate-staging").uuid
        yield standin, client, database_id
        api.close()


def props(d1: tuple[D1StandIn, D1Client, str], migrations: dict[str, str], **over: Any) -> dict[str, Any]:
    standin, _, database_id = d1
    return {"account_id": standin.account_id, "database_id": database_id, "api_token": TOKEN,
            "api_base": standin.api_base, "migrations": migrations, **over}


def recorded(d1: tuple[D1StandIn, D1Client, str]) -> list[dict[str, Any]]:
    _, client, database_id = d1
    return client.query(database_id, "SELECT id, name, applied_at FROM d1_migrations ORDER BY id")


def test_create_applies_the_repo_migrations_and_records_them_as_wrangler_does(d1):
    migrations = read_migrations(REPO_MIGRATIONS)
    result = D1MigrationsProvider().create(props(d1, migrations))
    assert result.outs["applied"] == sorted(migrations) and result.outs["recorded"] == sorted(migrations)
    rows = recorded(d1)
    assert [r["name"] for r in rows] == sorted(migrations) and [r["id"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["applied_at"] for r in rows)
    _, client, database_id = d1
    ddl = client.query(database_id, "SELECT sql FROM sqlite_master WHERE name = 'd1_migrations'")[0]["sql"]
    assert ddl.replace(" IF NOT EXISTS", "") == TRACKING_TABLE_SQL.replace(" IF NOT EXISTS", "")
    assert client.query(database_id, "SELECT name FROM sqlite_master WHERE name = 'jobs'")


def test_second_run_applies_nothing_and_a_new_file_applies_alone(d1):
    provider = D1MigrationsProvider()
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
    created = provider.create(props(d1, first))
    assert provider.diff(created.id, created.outs, props(d1, first)).changes is False
    again = provider.update(created.id, created.outs, props(d1, first))
    assert again.outs["applied"] == [] and [r["name"] for r in recorded(d1)] == ["0001_init.sql"]

    both = {**first, SECOND[0]: SECOND[1]}
    diff = provider.diff(created.id, again.outs, props(d1, both))
    assert diff.changes is True and diff.replaces == []
    updated = provider.update(created.id, again.outs, props(d1, both))
    assert updated.outs["applied"] == [SECOND[0]]
    assert [r["name"] for r in recorded(d1)] == ["0001_init.sql", SECOND[0]]
    assert provider.read(created.id, updated.outs).outs["recorded"] == ["0001_init.sql", SECOND[0]]


def test_editing_an_applied_migration_is_refused_with_what_to_do(d1):
    provider = D1MigrationsProvider()
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
    created = provider.create(props(d1, first))
    edited = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY, extra TEXT);\n"}
    with pytest.raises(MigrationError, match="0001_init.sql changed after being applied.*add a new migration"):
        provider.diff(created.id, created.outs, props(d1, edited))


def test_a_failing_migration_is_named_and_leaves_nothing_half_recorded(d1):
    provider = D1MigrationsProvider()
    broken = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n",
              "0002_broken.sql": "CREATE TABLE half (x TEXT);\nINSERT INTO no_such_table VALUES (1);\n"}
    with pytest.raises(MigrationError, match="migration 0002_broken.sql failed"):
        provider.create(props(d1, broken))
    _, client, database_id = d1
    assert [r["name"] for r in recorded(d1)] == ["0001_init.sql"]
    assert not client.query(database_id, "SELECT name FROM sqlite_master WHERE name = 'half'")


def test_misnamed_or_gapped_migrations_are_refused_before_touching_d1(d1):
    with pytest.raises(MigrationError, match="out of sequence"):
        D1MigrationsProvider().create(props(d1, {"0002_late.sql": "SELECT 1;\n"}))
    with pytest.raises(MigrationError, match="wrangler naming"):
        D1MigrationsProvider().create(props(d1, {"init.sql": "SELECT 1;\n"}))
    standin = d1[0]
    assert not any("/query" in path for _, path in standin.requests)


def test_a_wrong_token_fails_clearly_without_echoing_it(d1):
    with pytest.raises(MigrationError) as err:
        D1MigrationsProvider().create(props(d1, {"0001_init.sql": "SELECT 1;\n"}, api_token="cf-wrong-token-xyz"))
    assert "cf-wrong-token-xyz" not in str(err.value) and "token" in str(err.value)


def test_delete_keeps_the_schema_and_a_deleted_database_reads_as_gone(d1):
    provider = D1MigrationsProvider()
    created = provider.create(props(d1, {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}))
    provider.delete(created.id, created.outs)
    assert [r["name"] for r in recorded(d1)] == ["0001_init.sql"]
    _, client, database_id = d1
    client.delete_database(database_id)
    assert provider.read(created.id, created.outs).id == ""


def test_the_provider_survives_pulumis_pickling():
    restored = dill.loads(base64.b64decode(pulumi.dynamic.dynamic.serialize_provider(D1MigrationsProvider())))
    assert isinstance(restored, D1MigrationsProvider)


def up(provider: D1MigrationsProvider, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
    """What `pulumi up` leaves in the state: the update's outputs, or (no change in the diff) the old ones."""
    if provider.diff(id_, state, news).changes:
        return provider.update(id_, state, news).outs
    return state


def test_after_rotating_the_cloudflare_token_refresh_uses_the_new_one(d1):
    standin = d1[0]
    provider = D1MigrationsProvider()
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
    created = provider.create(props(d1, first))
    standin.api_token = "cf-rotated-token-9876543210"  # the operator rolls the token; the old one stops working
    state = up(provider, created.id, created.outs, props(d1, first, api_token=standin.api_token))
    assert state["api_token"] == standin.api_token  # the revoked token is not kept in the state
    assert provider.read(created.id, state).outs["recorded"] == ["0001_init.sql"]  # `pulumi refresh` works


def test_a_migration_lost_to_a_time_travel_restore_is_applied_again_by_the_next_up(d1):
    _, client, database_id = d1
    provider = D1MigrationsProvider()
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
    both = {**first, SECOND[0]: SECOND[1]}
    created = provider.create(props(d1, first))
    before = client.bookmark(database_id)
    state = up(provider, created.id, created.outs, props(d1, both))
    client.restore(database_id, bookmark=before)  # disaster recovery to a point before 0002 ran
    refreshed = provider.read(created.id, state).outs  # `pulumi up --refresh`
    assert refreshed["recorded"] == ["0001_init.sql"]
    state = up(provider, created.id, refreshed, props(d1, both))
    assert [r["name"] for r in recorded(d1)] == ["0001_init.sql", SECOND[0]]
    assert client.query(database_id, "SELECT name FROM sqlite_master WHERE name = 'job_tags'")
    assert provider.diff(created.id, provider.read(created.id, state).outs, props(d1, both)).changes is False


def test_renaming_an_applied_migration_is_refused_by_the_preview(d1):
    # D1 records migrations by file name: under its new name an applied data migration reads as pending.
    _, client, database_id = d1
    provider = D1MigrationsProvider()
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n",
             "0002_seed.sql": "INSERT INTO jobs (id) VALUES ('seed');\n"}
    created = provider.create(props(d1, first))
    for renamed in ({"0001_init.sql": first["0001_init.sql"], "0002_seed_jobs.sql": first["0002_seed.sql"]},
                    {"0001_init.sql": first["0001_init.sql"], "0002_seed_v2.sql": "INSERT INTO jobs VALUES ('x');\n"}):
        new_name = sorted(renamed)[1]
        with pytest.raises(MigrationError, match=f"0002_seed.sql.*{new_name}.*restore"):
            provider.diff(created.id, created.outs, props(d1, renamed))
    assert client.query(database_id, "SELECT id FROM jobs") == [{"id": "seed"}]


def test_a_checkout_missing_an_applied_migration_is_refused_by_the_preview_not_midway_through_up(d1):
    # The update would refuse it too (D1 records a migration this checkout lacks), but only after `pulumi up` had
    # already rolled out the endpoint's new image: the preview is where the operator must learn it.
    provider = D1MigrationsProvider()
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
    created = provider.create(props(d1, {**first, SECOND[0]: SECOND[1]}))
    with pytest.raises(MigrationError, match=f"{SECOND[0]}.*checkout that includes"):
        provider.diff(created.id, created.outs, props(d1, first))
    with pytest.raises(MigrationError, match=f"{SECOND[0]}.*checkout that includes"):  # also on the refreshed state
        provider.diff(created.id, provider.read(created.id, created.outs).outs, props(d1, first))


@pytest.mark.parametrize("status", [500, 503])
def test_refresh_during_a_cloudflare_outage_is_an_error_not_a_lost_schema(d1, stub, status):
    # "Gone" would make the next `pulumi up` create the resource again; only a 404 for the database means that.
    stub.handler.status = status
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
    created = D1MigrationsProvider().create(props(d1, first))
    with pytest.raises(MigrationError, match="cannot read the applied migrations"):
        D1MigrationsProvider().read(created.id, {**created.outs, "api_base": stub.base_url})


def checksum_rows(d1: tuple[D1StandIn, D1Client, str]) -> dict[str, str]:
    _, client, database_id = d1
    return {r["name"]: r["sha256"] for r in client.query(database_id, "SELECT name, sha256 FROM "
                                                          "goldgate_migration_checksums")}


def test_an_applied_migration_edited_after_an_up_that_failed_midway_is_refused_by_name(d1):
    # D1 records each migration as it runs; an update that fails at the next one leaves the state as it was, with no
    # checksum of the one it applied. Editing that one then went unseen: the update skipped it as applied.
    provider = D1MigrationsProvider()
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
    created = provider.create(props(d1, first))
    tags = {**first, SECOND[0]: SECOND[1], "0003_broken.sql": "INSERT INTO no_such_table VALUES (1);\n"}
    assert provider.diff(created.id, created.outs, props(d1, tags)).changes is True
    with pytest.raises(MigrationError, match="migration 0003_broken.sql failed"):
        provider.update(created.id, created.outs, props(d1, tags))  # `pulumi up` keeps created.outs as the state
    assert [r["name"] for r in recorded(d1)] == ["0001_init.sql", SECOND[0]]

    edited = {**first, SECOND[0]: SECOND[1].replace("(tag)", "(tag, job_id)"),
              "0003_broken.sql": "CREATE TABLE fixed (x TEXT);\n"}
    with pytest.raises(MigrationError, match=f"{SECOND[0]} changed after being applied.*add a new migration"):
        provider.diff(created.id, created.outs, props(d1, edited))  # the preview
    with pytest.raises(MigrationError, match=f"{SECOND[0]} changed after being applied"):
        provider.update(created.id, created.outs, props(d1, edited))  # `pulumi up --skip-preview`
    assert [r["name"] for r in recorded(d1)] == ["0001_init.sql", SECOND[0]]  # nothing ran

    fixed = {**edited, SECOND[0]: SECOND[1]}  # the applied text restored: the fixed 0003 applies
    assert provider.update(created.id, created.outs, props(d1, fixed)).outs["applied"] == ["0003_broken.sql"]


def test_each_migration_records_its_sha256_in_the_same_batch_and_a_failing_one_records_nothing(d1):
    provider = D1MigrationsProvider()
    broken = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n",
              "0002_broken.sql": "CREATE TABLE half (x TEXT);\nINSERT INTO no_such_table VALUES (1);\n"}
    with pytest.raises(MigrationError, match="migration 0002_broken.sql failed"):
        provider.create(props(d1, broken))
    assert checksum_rows(d1) == {"0001_init.sql": checksums(broken)["0001_init.sql"]}


def test_a_database_migrated_before_the_record_existed_is_recorded_by_the_next_up_and_then_guarded(d1):
    # A D1 that wrangler, or a goldgate before the record, migrated: nothing to compare its migrations with yet.
    _, client, database_id = d1
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
    client.query(database_id, TRACKING_TABLE_SQL)
    client.query(database_id, "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"
                              "INSERT INTO d1_migrations (name) VALUES ('0001_init.sql');")
    provider = D1MigrationsProvider()
    both = {**first, SECOND[0]: SECOND[1]}
    created = provider.create(props(d1, both))
    assert created.outs["applied"] == [SECOND[0]]
    assert checksum_rows(d1) == checksums(both)  # 0001 as the checkout reads it now

    edited = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY, extra TEXT);\n", SECOND[0]: SECOND[1]}
    stale = {**created.outs, "checksums": {}}  # a state that vouches for nothing: D1's record decides
    with pytest.raises(MigrationError, match="0001_init.sql changed after being applied"):
        provider.diff(created.id, stale, props(d1, edited))


def test_a_preview_asks_d1_only_about_new_migrations_of_a_database_that_exists(d1):
    standin = d1[0]
    provider = D1MigrationsProvider()
    first = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n"}
    created = provider.create(props(d1, first))
    standin.requests.clear()
    assert provider.diff(created.id, created.outs, props(d1, first, api_token="cf-rotated-token-xyz")).changes is True
    # A preview of a new migration on a database not created yet: its id is unknown, the update checks D1.
    both = props(d1, {**first, SECOND[0]: SECOND[1]}, database_id=UNKNOWN)
    assert provider.diff(created.id, created.outs, both).changes is True
    assert not any("/query" in path for _, path in standin.requests)
