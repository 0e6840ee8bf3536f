"""Credentials the cloud DR drill takes from the environment, as a CRLF .env file or a pasted secret leaves them:
the carriage return around R2_ACCESS_KEY_ID went into the upload's signed header, so the drill exported the whole
database (an export blocks it) and then failed, with that header in its error. The whitespace around a credential
is dropped; a credential with a space or line break inside is refused by name before the export, never shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from r2_server import r2_admin

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.migrations import apply_with
from goldgate.ops.dr import latest_drill

TOKEN = "cf-drill-token-abcdef0123456789"


@pytest.fixture
def drill_argv(tmp_path: Path) -> Iterator[list[str]]:
    """`goldgate dr-drill staging --cloud` against a migrated D1 stand-in and moto's S3 as R2."""
    with D1StandIn(TOKEN, export_polls=1, import_polls=1) as standin, r2_admin("goldgate-drill") as r2:
        with CloudflareApi(TOKEN, standin.api_base) as api:
            d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
            source = d1.create_database(specs.load_pulumi("staging").database.name).uuid
            apply_with(lambda sql, params: d1.query(source, sql, params))
        yield ["dr-drill", "staging", "--cloud", "--database-id", source, "--account-id", standin.account_id,
               "--api-base", standin.api_base, "--r2-endpoint", r2.endpoint_url, "--bucket", r2.bucket,
               "--home", str(tmp_path / "home")]


def test_credentials_with_a_carriage_return_around_them_still_drill(capsys, monkeypatch, tmp_path: Path,
                                                                    drill_argv: list[str]) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN + "\r")
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "k\r")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", " s\r\n")
    code = main(drill_argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("staging: DR drill (cloud) PASSED")
    assert latest_drill(tmp_path / "home", "staging", "cloud")["passed"] is True


@pytest.mark.parametrize("name", ["R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "CLOUDFLARE_API_TOKEN"])
def test_a_credential_with_a_line_break_inside_is_refused_by_name_before_the_export(
        capsys, monkeypatch, tmp_path: Path, drill_argv: list[str], name: str) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv(name, "pasted-part-one\npasted-part-two")
    assert main(drill_argv) == 1
    out, err = capsys.readouterr()
    assert "pasted-part" not in out + err
    assert err.splitlines()[-1].startswith(f"goldgate: error: {name} holds a character no credential has")
    assert latest_drill(tmp_path / "home", "staging", "cloud") is None  # refused before anything ran
