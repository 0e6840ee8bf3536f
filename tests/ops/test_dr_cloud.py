"""The cloud DR drill against loopback stand-ins: D1 REST (SQLite-backed) and R2 (moto's S3)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ConnectionClosedError
from ops_fixtures import STANDINS
from r2_server import r2_admin

from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.r2 import R2Admin
from goldgate.migrations import apply_with
from goldgate.ops.dr import latest_drill, run_cloud_drill
from service.sqltext import split_sql

TOKEN = "cf-drill-token-abcdef0123456789"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Elsewhere:
    d1: D1Client
    source: str
    s3_url: str
    parts_source: str  # a smaller database whose dump still goes up in three parts

    def bucket(self) -> str:
        name = f"goldgate-drill-{uuid.uuid4().hex[:12]}"
        self.s3().create_bucket(Bucket=name)
        return name

    def s3(self):
        return boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1", aws_access_key_id="k",
                            aws_secret_access_key="s")

    def r2(self, bucket: str) -> R2Admin:
        # 5 MiB parts (R2's minimum): a dump of tens of MB goes up in parts, as a large one would.
        return R2Admin(self.s3_url, bucket, "k", "s", multipart_threshold=5 * MiB, part_size=5 * MiB)


@pytest.fixture
def r2():
    with r2_admin("goldgate-drill") as admin:
        yield admin


@pytest.fixture
def cloud():
    with D1StandIn(TOKEN, export_polls=2, import_polls=1) as standin:
        api = CloudflareApi(TOKEN, standin.api_base)
        d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
        source = d1.create_database("goldgate-staging").uuid
        apply_with(lambda sql, params: d1.query(source, sql, params))
        d1.query(source, """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
            INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, created_at,
                              created_at_ms, updated_at)
            SELECT printf('job-%04d', i), 'staging', 'sdxl-txt2img', 'sdxl-txt2img@1.0.0',
                   '{"prompt": "multi\nline, it''s"}', printf('%032x', i), 'completed',
                   '2026-11-20T00:00:00.000Z', i, '2026-11-20T00:10:00.000Z' FROM n""")
        d1.query(source, "INSERT INTO job_metrics (job_id, stack, status, e2e_ms, created_at) "
                         "SELECT id, stack, status, 1000, created_at FROM jobs")
        yield standin, d1, source
        api.close()


@pytest.fixture(scope="module")
def big_cloud() -> Iterator[Elsewhere]:
    """A migrated D1 whose export is about 27 MB (80,000 jobs), another of 32,000 jobs, with R2, all served by
    another process."""
    child = subprocess.Popen([sys.executable, "-c", STANDINS, TOKEN, "1"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line, "the stand-ins did not start"
        where = json.loads(line)
        # A client's default 60 s bounds a hang, not a timing under test: an export of 80,000 statements on a
        # loaded 2-core machine could outlast it.
        with CloudflareApi(TOKEN, where["api_base"], timeout_s=600.0) as api:
            d1 = D1Client(api, where["account_id"], poll_interval_s=0.0)
            source = d1.create_database("goldgate-staging-big").uuid
            # The upload cut short needs a dump of several parts, not the memory test's many: 32,000 of
            # these jobs dump to about 11.6 MB, three 5 MiB parts (the first stored, the later ones cut), and
            # their export is fingerprinted before the upload at less than half the 80,000 jobs' cost.
            parts_source = d1.create_database("goldgate-staging-parts").uuid
            for database, jobs in ((source, 80_000), (parts_source, 32_000)):
                apply_with(lambda sql, params, db=database: d1.query(db, sql, params))
                d1.query(database, """
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                    INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status,
                                      created_at, created_at_ms, updated_at)
                    SELECT printf('job-%06d', i), 'staging', 'sdxl-txt2img', 'sdxl-txt2img@1.0.0',
                           '{"prompt": "' || hex(randomblob(40)) || '"}', printf('%032x', i), 'completed',
                           '2026-11-20T00:00:00.000Z', i, '2026-11-20T00:10:00.000Z' FROM n""", [jobs])
            yield Elsewhere(d1, source, where["s3"], parts_source)
    finally:
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _leftovers(home: Path, stack: str = "staging") -> list[str]:
    """Files a drill left in its directory besides its records."""
    return sorted(p.name for p in (home / "drills" / stack).iterdir() if p.suffix != ".json")


def test_a_drill_of_a_multi_megabyte_database_keeps_python_memory_well_under_the_dump_size(big_cloud, tmp_path):
    bucket = big_cloud.bucket()
    r2 = big_cloud.r2(bucket)
    tracemalloc.start()
    try:
        result = run_cloud_drill("staging", big_cloud.d1, big_cloud.source, r2, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.passed, result.error
    assert result.row_counts["jobs"] == 80_000
    size = result.backup_bytes
    assert size > 20 * MiB
    # Export, fingerprint, R2 upload and read-back, import and verification all went a chunk (or a
    # /query page) at a time: the drill's peak is a fraction of the dump
    assert peak < size // 3, f"peak {peak} bytes for a {size}-byte dump"
    key = result.backup.removeprefix(f"r2://{bucket}/")
    head = big_cloud.s3().head_object(Bucket=bucket, Key=key)
    manifest = json.loads(r2.get(key.removesuffix(".sql") + ".manifest.json"))
    assert head["ContentLength"] == size == manifest["bytes"]
    assert head["Metadata"]["sha256"] == manifest["sha256"]  # the sha256 recorded with the object
    assert re.fullmatch(r"[0-9a-f]{32}-[0-9]+", head["ETag"].strip('"'))  # stored as a multipart upload
    assert _leftovers(tmp_path) == []


def test_an_r2_upload_cut_short_stores_no_backup_and_the_drill_fails(big_cloud, tmp_path):
    bucket = big_cloud.bucket()
    r2 = big_cloud.r2(bucket)
    parts: list[str] = []

    def network_drops_after_the_first_part(request, **_):
        parts.append(request.url)
        if not re.search(r"[?&]partNumber=1(&|$)", request.url):
            raise ConnectionClosedError(endpoint_url=request.url)

    # Where the network fails: under boto3, for the first try and every retry of the later parts.
    r2._s3.meta.events.register("before-send.s3.UploadPart", network_drops_after_the_first_part)
    databases = [d.uuid for d in big_cloud.d1.list_databases()]
    assert databases == [big_cloud.source, big_cloud.parts_source]
    result = run_cloud_drill("staging", big_cloud.d1, big_cloud.parts_source, r2, tmp_path)
    assert len(parts) > 1, "the backup was not uploaded in parts"
    assert not result.passed and "storing backup" in result.error
    assert latest_drill(tmp_path, "staging", "cloud")["passed"] is False
    assert r2.list() == []  # neither the SQL nor a manifest vouching for it
    assert big_cloud.s3().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # aborted, not left
    assert [d.uuid for d in big_cloud.d1.list_databases()] == databases  # no scratch was created
    assert _leftovers(tmp_path) == []


def test_an_import_upload_cut_short_fails_the_drill_and_deletes_the_scratch(cloud, r2, tmp_path):
    standin, d1, source = cloud
    standin.backend.cut_next_upload_at = 4096
    result = run_cloud_drill("staging", d1, source, r2, tmp_path)
    assert not result.passed and "uploading the SQL file for import failed" in result.error
    assert latest_drill(tmp_path, "staging", "cloud")["passed"] is False
    assert result.restore_s is None and result.verified == []  # no restore is reported as verified
    assert standin.backend.uploads == {}  # D1 kept nothing of the cut upload
    assert list(standin.backend.databases) == [source]
    assert _leftovers(tmp_path) == []


def test_cloud_drill_exports_stores_in_r2_imports_a_scratch_verifies_and_deletes_it(cloud, r2, tmp_path):
    standin, d1, source = cloud
    result = run_cloud_drill("staging", d1, source, r2, tmp_path)
    assert result.passed, result.error
    assert result.row_counts["jobs"] == 300 and result.row_counts["job_metrics"] == 300
    assert result.schema_version[0] == "0001_init.sql"
    assert result.rto_s is not None and result.rpo_s is not None
    keys = sorted(o.key for o in r2.list())
    assert len(keys) == 2 and keys[0].startswith("backups/staging/")
    assert {k.rsplit(".", 1)[-1] for k in keys} == {"sql", "json"}
    manifest = json.loads(r2.get(next(k for k in keys if k.endswith(".json"))))
    assert manifest["fingerprint"]["row_counts"]["jobs"] == 300
    # the scratch database is gone; only the source remains
    assert list(standin.backend.databases) == [source]
    assert latest_drill(tmp_path, "staging", "cloud")["target"] == "cloud"
    assert latest_drill(tmp_path, "staging", "cloud")["database_id"] == source  # what the checklist matches the stack by
    assert not list((tmp_path / "drills" / "staging").glob("*.sql*"))  # the local export was removed
    requests = [p for _, p in standin.requests]
    assert any(p.endswith("/export") for p in requests) and any("/_signed/imports/" in p for p in requests)


def test_a_failed_import_fails_the_drill_and_still_deletes_the_scratch(cloud, r2, tmp_path):
    standin, d1, source = cloud
    standin.backend.fail_next_import = "D1_RESET_DO: storage reset during import"
    result = run_cloud_drill("staging", d1, source, r2, tmp_path)
    assert not result.passed and "storage reset during import" in result.error
    assert list(standin.backend.databases) == [source]
    assert latest_drill(tmp_path, "staging", "cloud")["passed"] is False


def test_an_export_download_cut_short_fails_the_drill_and_stores_nothing(cloud, r2, tmp_path):
    standin, d1, source = cloud
    standin.backend.cut_next_download_at = 4096
    result = run_cloud_drill("staging", d1, source, r2, tmp_path)
    assert not result.passed and "cut short" in result.error and "run the export again" in result.error
    assert not list(r2.list())  # no truncated backup in R2
    assert list(standin.backend.databases) == [source]  # no scratch was created from it
    assert sorted(p.name for p in (tmp_path / "drills" / "staging").iterdir()) == sorted(
        p.name for p in (tmp_path / "drills" / "staging").glob("*.json"))  # no partial export left behind


def test_cli_drill_prints_timings_and_exits_zero(tmp_path, stack_db, capsys):
    from goldgate.local.platform import LocalPlatform

    home = tmp_path / "home"
    stack_db(LocalPlatform(home).db_path("staging"), jobs=500)
    assert main(["dr-drill", "staging", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "DR drill (local) PASSED" in out and "RTO achieved" in out and "RPO achieved" in out
    assert main(["dr-drill", "staging", "--home", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True


def test_cli_drill_of_a_stack_without_a_database_fails_with_one_line(tmp_path, capsys):
    assert main(["dr-drill", "staging", "--home", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "goldgate up staging" in out


def test_cli_restore_refuses_a_tampered_backup(tmp_path, stack_db, capsys):
    from goldgate.local.platform import LocalPlatform

    home = tmp_path / "home"
    stack_db(LocalPlatform(home).db_path("staging"), jobs=50)
    assert main(["dr-drill", "staging", "--home", str(home)]) == 0
    backup = next((home / "backups" / "staging").glob("*.sqlite"))
    backup.write_bytes(backup.read_bytes()[:-4096])
    capsys.readouterr()
    assert main(["dr-restore", "staging", "--home", str(home), "--backup", str(backup)]) == 1
    assert "truncated; refusing to restore" in capsys.readouterr().err


def test_a_drill_of_a_d1_without_tables_fails_instead_of_verifying_nothing(cloud, r2, tmp_path):
    _, d1, _ = cloud
    empty = d1.create_database("goldgate-staging-unmigrated").uuid
    result = run_cloud_drill("staging", d1, empty, r2, tmp_path)
    assert not result.passed and "holds no tables" in result.error
    assert latest_drill(tmp_path, "staging", "cloud")["passed"] is False
    assert not list(r2.list())  # no empty backup stored beside the real ones


def test_cli_cloud_drill_refuses_a_database_id_that_is_not_a_uuid_before_touching_anything(
        cloud, tmp_path, monkeypatch, capsys):
    standin, _, source = cloud
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "r2-secret-not-printed")
    # a pasted path instead of the uuid would address another API path under the account
    hostile = f"{source}/../../../d1/database/{source}"
    drill = ["dr-drill", "staging", "--home", str(tmp_path), "--cloud", "--account-id", standin.account_id,
             "--api-base", standin.api_base, "--r2-endpoint", "http://127.0.0.1:9", "--database-id", hostile]
    seen = len(standin.requests)
    assert main(drill) == 1
    assert "is not a D1 uuid" in capsys.readouterr().err
    assert latest_drill(tmp_path, "staging", "cloud") is None  # the last real drill's record is not replaced
    assert len(standin.requests) == seen  # not one call reached the API


def test_an_export_missing_a_table_of_the_live_database_fails_the_drill_and_stores_nothing(cloud, r2, tmp_path):
    # A partial export (a table, its rows and its indexes left out) imports and verifies against itself
    # perfectly: only the live database can tell it is not a backup of the whole of it.
    standin, d1, source = cloud
    write_dump = standin.backend.write_dump

    def without_job_metrics(db, path):
        write_dump(db, path)
        kept = [stmt for stmt in split_sql(path.read_text(encoding="utf-8")) if "job_metrics" not in stmt]
        path.write_text("".join(f"{stmt};\n" for stmt in kept), encoding="utf-8")

    standin.backend.write_dump = without_job_metrics
    result = run_cloud_drill("staging", d1, source, r2, tmp_path)
    assert not result.passed
    assert "job_metrics" in result.error and "live database" in result.error
    assert latest_drill(tmp_path, "staging", "cloud")["passed"] is False
    assert not list(r2.list())  # no partial backup in R2
    assert list(standin.backend.databases) == [source]  # no scratch was created from it


def test_a_drill_of_another_stacks_database_fails_and_copies_nothing_into_this_stacks_bucket(cloud, r2, tmp_path):
    # --database-id is typed by hand: STAGING's D1 drilled as PROD would store STAGING's jobs as PROD's backup.
    standin, d1, source = cloud
    result = run_cloud_drill("prod", d1, source, r2, tmp_path)
    assert not result.passed
    assert "staging" in result.error and "--database-id" in result.error
    assert latest_drill(tmp_path, "prod", "cloud")["passed"] is False
    assert not list(r2.list())
    assert list(standin.backend.databases) == [source]
