"""The hidden Cloudflare API base of the cloud commands (tests point it at a stand-in) is checked as it is parsed:
a malformed one is a usage error naming it, not a traceback from the HTTP client or a prune "that may have been
applied"."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.cli import main

ACCOUNT = "0123456789abcdef0123456789abcdef"
DATABASE = "11111111-1111-1111-1111-111111111111"


@pytest.mark.parametrize("base", ["http://[::1", "ftp://127.0.0.1", "http://", "http://127.0.0.1:99999"])
@pytest.mark.parametrize("argv", [
    ["prune", "staging", "--cloud", "--keep-days", "30", "--account-id", ACCOUNT, "--database-id", DATABASE,
     "--api-base"],
    ["dr-drill", "staging", "--cloud", "--account-id", ACCOUNT, "--database-id", DATABASE, "--api-base"],
    ["metrics", "staging", "--target", "cloud", "--database-id", DATABASE, "--cloudflare-api-base"],
], ids=["prune", "dr-drill", "metrics"])
def test_a_malformed_api_base_is_a_usage_error(capsys, monkeypatch, tmp_path: Path, argv: list[str],
                                               base: str) -> None:
    for name in ("CLOUDFLARE_API_TOKEN", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "not-a-real-credential")
    with pytest.raises(SystemExit) as exited:
        main([*argv, base, "--home", str(tmp_path)])
    assert exited.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert f"{argv[-1]}: {base!r} is not an http(s) URL of the Cloudflare API" in last
