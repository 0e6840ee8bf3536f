"""`goldgate dr-drill --cloud` stores its backups in the stack's backups bucket (`storage.backup_bucket`, by default
`<results bucket>-backups`), the one bucket its credentials (the `backup_r2_*` outputs) reach: the RunPod workers'
token reaches only the results bucket (tests/infra/test_review18_backup_bucket.py). Before, the drill's default
was the results bucket, where any worker could read, overwrite or delete a backup."""

from __future__ import annotations

from pathlib import Path

import boto3
from r2_server import r2_admin

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.migrations import apply_with
from goldgate.ops.dr import latest_drill

TOKEN = "cf-drill-token-abcdef0123456789"


def test_the_cloud_drill_stores_its_backup_in_the_backups_bucket_by_default(capsys, monkeypatch,
                                                                            tmp_path: Path) -> None:
    spec = specs.load_pulumi("staging")
    assert spec.storage.backup_bucket == f"{spec.storage.bucket}-backups"
    with D1StandIn(TOKEN, export_polls=1, import_polls=1) as standin, r2_admin("goldgate-drill") as r2:
        s3 = boto3.client("s3", endpoint_url=r2.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="k", aws_secret_access_key="s")
        for bucket in (spec.storage.bucket, spec.storage.backup_bucket):
            s3.create_bucket(Bucket=bucket)
        with CloudflareApi(TOKEN, standin.api_base) as api:
            d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
            source = d1.create_database(spec.database.name).uuid
            apply_with(lambda sql, params: d1.query(source, sql, params))
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
        monkeypatch.setenv("R2_ACCESS_KEY_ID", "k")
        monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "s")
        code = main(["dr-drill", "staging", "--cloud", "--database-id", source, "--account-id", standin.account_id,
                     "--api-base", standin.api_base, "--r2-endpoint", r2.endpoint_url,
                     "--home", str(tmp_path / "home")])
        out = capsys.readouterr().out
        assert code == 0, out
        drill = latest_drill(tmp_path / "home", "staging", "cloud")
        assert drill["passed"] is True
        assert drill["backup"].startswith(f"r2://{spec.storage.backup_bucket}/backups/staging/"), drill["backup"]
        kept = [o["Key"] for o in s3.list_objects_v2(Bucket=spec.storage.backup_bucket).get("Contents", [])]
        assert {Path(k).suffix for k in kept} == {".sql", ".json"}
        assert not s3.list_objects_v2(Bucket=spec.storage.bucket).get("Contents")  # nothing in the workers' bucket
        for key in kept:  # moto's buckets outlive its server in this process
            s3.delete_object(Bucket=spec.storage.backup_bucket, Key=key)
        for bucket in (spec.storage.bucket, spec.storage.backup_bucket):
            s3.delete_bucket(Bucket=bucket)
