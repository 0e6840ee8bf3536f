"""`goldgate dr-drill --cloud` reads the bucket its backup goes to before it exports anything.

Today the drill's default bucket became the stack's own backups bucket (`storage.backup_bucket`), which `pulumi up`
creates and only the `backup_r2_*` credentials reach. A stack upgraded without its `pulumi up` yet, or a scheduled
drill still given the workers' `r2_*` credentials, exported D1 whole (blocking the database while it ran, up to
10 GB) and then failed to store the backup: every day, with an S3 error that did not say what to change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from r2_server import r2_admin

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.migrations import apply_with

TOKEN = "cf-drill-token-abcdef0123456789"


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[D1StandIn, list[str]]]:
    """A migrated D1 stand-in and moto's S3 as R2, with no backups bucket: the argv of a cloud drill of STAGING."""
    spec = specs.load_pulumi("staging")
    with D1StandIn(TOKEN, export_polls=1, import_polls=1) as standin, r2_admin("goldgate-drill") as r2:
        s3 = boto3.client("s3", endpoint_url=r2.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="k", aws_secret_access_key="s")
        # moto's buckets are per process: one another test left behind would hide the missing bucket.
        if spec.storage.backup_bucket in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            for found in s3.list_objects_v2(Bucket=spec.storage.backup_bucket).get("Contents", []):
                s3.delete_object(Bucket=spec.storage.backup_bucket, Key=found["Key"])
            s3.delete_bucket(Bucket=spec.storage.backup_bucket)
        with CloudflareApi(TOKEN, standin.api_base) as api:
            d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
            source = d1.create_database(spec.database.name).uuid
            apply_with(lambda sql, params: d1.query(source, sql, params))
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
        monkeypatch.setenv("R2_ACCESS_KEY_ID", "k")
        monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "s")
        standin.requests.clear()
        yield standin, ["dr-drill", "staging", "--cloud", "--database-id", source, "--account-id",
                        standin.account_id, "--api-base", standin.api_base, "--r2-endpoint", r2.endpoint_url,
                        "--home", str(tmp_path / "home")]


def _exports(standin: D1StandIn) -> list[tuple[str, str]]:
    return [request for request in standin.requests if request[1].endswith("/export")]


def test_a_backups_bucket_not_created_yet_is_named_with_what_to_do_before_d1_is_exported(drill, capsys):
    standin, argv = drill
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("goldgate: error: ") and "goldgate-staging-results-backups" in err, err
    assert "nothing was exported" in err and "`pulumi up --stack staging` creates it" in err, err
    assert "`backup_r2_access_key_id` and `backup_r2_secret_access_key`" in err, err
    assert _exports(standin) == []  # as it was: D1 exported whole, then "storing backup ... failed (NoSuchBucket)"


def test_a_bucket_named_with_bucket_that_cannot_be_read_says_to_check_it(drill, capsys):
    standin, argv = drill
    assert main([*argv, "--bucket", "no-such-drill-bucket"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no-such-drill-bucket" in err and "check --bucket" in err, err
    assert _exports(standin) == []


def test_an_r2_endpoint_that_does_not_answer_is_named_as_such_not_as_a_missing_bucket(drill, capsys):
    import socket

    standin, argv = drill
    with socket.socket() as closed:   # a port of this machine nothing listens on
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    argv[argv.index("--r2-endpoint") + 1] = dead
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"R2 at {dead} did not answer: check this machine's network" in err, err
    assert "creates it" not in err and "backup_r2" not in err, err   # as it was: "pulumi up creates it", the keys
    assert _exports(standin) == []


@pytest.mark.parametrize("name, output", [("R2_ACCESS_KEY_ID", "backup_r2_access_key_id"),
                                          ("R2_SECRET_ACCESS_KEY", "backup_r2_secret_access_key")])
def test_a_missing_r2_credential_names_the_stack_output_it_comes_from(drill, capsys, monkeypatch, name, output):
    standin, argv = drill
    monkeypatch.delenv(name)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{name} is not set" in err and f"`pulumi stack output {output} --show-secrets --stack staging`" in err, err
    assert _exports(standin) == []
