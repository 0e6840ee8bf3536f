"""`goldgate dr-drill --cloud` of a stack whose bucket is in a jurisdiction (storage.jurisdiction: eu, fedramp)
stores its backup at that jurisdiction's own S3 host: the account's default host answers NoSuchBucket for such a
bucket, so the drill exported D1 (which blocks the database while it runs) and then failed to store the backup."""

from __future__ import annotations

import pytest
import yaml

import goldgate.cloudflare.r2 as r2_module
from goldgate import spec as specs
from goldgate.cli import main
from goldgate.errors import GoldgateError

DATABASE_ID = "01234567-89ab-cdef-0123-456789abcdef"
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"


class Stop(GoldgateError):
    pass


@pytest.fixture
def endpoints(tmp_path, monkeypatch):
    """The S3 endpoint each drill's R2 client was made for; the drill stops there, before any call."""
    for name, value in (("CLOUDFLARE_API_TOKEN", "cf-test-token-0123456789"), ("R2_ACCESS_KEY_ID", "r2-key-id"),
                        ("R2_SECRET_ACCESS_KEY", "r2-secret-0123456789")):
        monkeypatch.setenv(name, value)
    seen: list[str] = []

    def r2_admin(endpoint, *args, **kwargs):
        seen.append(endpoint)
        raise Stop("stopped at the R2 client")

    monkeypatch.setattr(r2_module, "R2Admin", r2_admin)  # the command imports it when it runs
    return seen


def _stacks_with(tmp_path, monkeypatch, jurisdiction):
    doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())
    doc["config"]["goldgate:spec"]["storage"]["jurisdiction"] = jurisdiction
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc))
    real = specs.load_pulumi
    monkeypatch.setattr(specs, "load_pulumi", lambda name: real(name, stacks))


def _drill(home, *extra):
    return main(["dr-drill", "staging", "--cloud", "--database-id", DATABASE_ID, "--account-id", ACCOUNT_ID,
                 "--home", str(home), *extra])


@pytest.mark.parametrize(("jurisdiction", "host"), [("default", f"{ACCOUNT_ID}.r2.cloudflarestorage.com"),
                                                    ("eu", f"{ACCOUNT_ID}.eu.r2.cloudflarestorage.com"),
                                                    ("fedramp", f"{ACCOUNT_ID}.fedramp.r2.cloudflarestorage.com")])
def test_the_drill_stores_its_backup_at_the_buckets_jurisdiction_host(tmp_path, monkeypatch, endpoints, capsys,
                                                                      jurisdiction, host):
    _stacks_with(tmp_path, monkeypatch, jurisdiction)
    assert _drill(tmp_path / "home") == 1
    assert "stopped at the R2 client" in capsys.readouterr().err
    assert endpoints == [f"https://{host}"]


def test_an_explicit_r2_endpoint_still_wins(tmp_path, monkeypatch, endpoints):
    _stacks_with(tmp_path, monkeypatch, "eu")
    assert _drill(tmp_path / "home", "--r2-endpoint", "https://r2.example.test") == 1
    assert endpoints == ["https://r2.example.test"]
