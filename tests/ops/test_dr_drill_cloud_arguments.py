"""`goldgate dr-drill --cloud` refuses a malformed --r2-endpoint or --bucket in one line, before it calls anything:
no export is started (it blocks the database), no drill is recorded."""

from __future__ import annotations

import socket

import pytest

from goldgate.cli import main
from goldgate.ops.dr import latest_path

DATABASE_ID = "01234567-89ab-cdef-0123-456789abcdef"
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def unreachable_api(monkeypatch):
    """Credentials in the environment, and an API base where nothing answers (a port bound but not listening)."""
    for name, value in (("CLOUDFLARE_API_TOKEN", "cf-test-token-0123456789"), ("R2_ACCESS_KEY_ID", "r2-key-id"),
                        ("R2_SECRET_ACCESS_KEY", "r2-secret-0123456789")):
        monkeypatch.setenv(name, value)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _drill(home, api_base, *extra):
    return main(["dr-drill", "staging", "--cloud", "--database-id", DATABASE_ID, "--account-id", ACCOUNT_ID,
                 "--api-base", api_base, "--home", str(home), *extra])


@pytest.mark.parametrize("endpoint", ["not a url", "ftp://r2.example", "http://[::1", "https://under_score.example"])
def test_a_malformed_r2_endpoint_is_one_line_before_anything_runs(tmp_path, unreachable_api, capsys, endpoint):
    assert _drill(tmp_path, unreachable_api, "--r2-endpoint", endpoint) == 1
    err = capsys.readouterr().err
    assert err.startswith("goldgate: error: --r2-endpoint ") and len(err.splitlines()) == 1, err
    assert not latest_path(tmp_path, "staging", "cloud").exists()


@pytest.mark.parametrize("bucket", ["goldgate-prod-results/backups", "Goldgate_Prod", "x"])
def test_a_malformed_bucket_is_refused_before_the_export_runs(tmp_path, unreachable_api, capsys, bucket):
    assert _drill(tmp_path, unreachable_api, "--bucket", bucket) == 1
    err = capsys.readouterr().err
    assert err.startswith("goldgate: error: --bucket ") and "not an R2 bucket name" in err, err
    assert "Cloudflare API" not in err
    assert not latest_path(tmp_path, "staging", "cloud").exists()
