"""A Pulumi state written from a CRLF checkout (git's core.autocrlf, Git for Windows' default) between 4d72cd7 and
migration checksums read with line ends as LF: its checksums are of the bytes with CRLF. The same files, in either
checkout, are one text: the next preview must not refuse them as edited; a real edit still is."""

from __future__ import annotations

import hashlib

import pytest
from test_infra_d1_migrations import d1, props  # noqa: F401  (d1 is a fixture)

from goldgate.migrations import MigrationError
from infra.d1_migrations_provider import D1MigrationsProvider

LF = {"0001_init.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n-- the jobs\n"}
CRLF = {name: sql.replace("\n", "\r\n") for name, sql in LF.items()}


def _as_recorded_raw(outs: dict, migrations: dict[str, str]) -> dict:
    return {**outs, "checksums": {n: hashlib.sha256(s.encode()).hexdigest() for n, s in migrations.items()}}


@pytest.mark.parametrize("checkout", [LF, CRLF], ids=["lf", "crlf"])
def test_a_crlf_checkouts_state_is_the_same_text(d1, checkout):  # noqa: F811
    provider = D1MigrationsProvider()
    created = provider.create(props(d1, CRLF))
    state = _as_recorded_raw(created.outs, CRLF)
    diff = provider.diff(created.id, state, props(d1, checkout))   # an update that applies nothing, at most
    assert provider.update(created.id, state, props(d1, checkout)).outs["applied"] == []
    assert diff.replaces in (None, [])
    edited = {"0001_init.sql": checkout["0001_init.sql"].replace("jobs\n", "job rows\n").replace("jobs\r\n", "x\r\n")}
    with pytest.raises(MigrationError, match="0001_init.sql changed after being applied"):
        provider.diff(created.id, state, props(d1, edited))
