"""Pure pieces: cost, signatures, config validation, workflow files, the migrations runner."""

from __future__ import annotations

import json
import sqlite3

import pytest
from service_testkit import MIGRATIONS, WORKFLOWS, make_config

from goldgate.migrations import apply_sqlite as goldgate_apply
from service import cost, signing
from service.config import ConfigError, ServiceConfig
from service.migrate import MigrationError, apply_sqlite
from service.workflows import Registry, WorkflowError, parse_workflow


@pytest.mark.parametrize(("name", "price"), [
    ("NVIDIA GeForce RTX 4090", 0.00031), ("NVIDIA RTX A4000", 0.00016), ("NVIDIA RTX 4000 Ada Generation", 0.00016),
    ("NVIDIA L4", 0.00019), ("NVIDIA L40S", 0.00053), ("NVIDIA L40", 0.00053), ("NVIDIA A40", 0.00034),
    ("NVIDIA RTX A6000", 0.00034), ("NVIDIA RTX 6000 Ada Generation", 0.00053), ("NVIDIA A100 80GB PCIe", 0.00076),
    ("NVIDIA H100 80GB HBM3", 0.00116), ("NVIDIA H200", 0.00155), ("NVIDIA B200", 0.00240),
    ("NVIDIA GeForce RTX 3090", 0.00019), ("NVIDIA RTX A5000", 0.00019), ("NVIDIA RTX A4500", 0.00016),
    ("Some Future GPU", None), ("", None), (None, None),
])
def test_fallback_price_follows_the_vendor_table(name, price):
    assert cost.flex_price(name) == price


def test_cost_bills_execution_time_rounded_up_to_whole_seconds_per_gpu():
    assert cost.billed_seconds(1) == 1 and cost.billed_seconds(1000) == 1 and cost.billed_seconds(1001) == 2
    assert cost.estimate_usd(2500, "NVIDIA GeForce RTX 4090", 2, None) == pytest.approx(0.00031 * 2 * 3)
    assert cost.estimate_usd(2500, "NVIDIA GeForce RTX 4090", 1, 0.001) == pytest.approx(0.003)  # config wins
    assert cost.estimate_usd(2500, "Unknown", 1, None) is None
    assert cost.estimate_usd(None, "NVIDIA H100", 1, None) is None
    assert cost.estimate_usd(0, "NVIDIA H100", 1, None) == 0


def test_webhook_signature_is_hmac_sha256_of_the_job_id_and_checked_strictly():
    sig = signing.webhook_signature("secret-secret-secret", "job1")
    import hashlib
    import hmac
    assert sig == hmac.new(b"secret-secret-secret", b"job1", hashlib.sha256).hexdigest()
    assert signing.verify_webhook_signature("secret-secret-secret", "job1", sig)
    assert signing.verify_webhook_signature("secret-secret-secret", "job1", sig.upper())
    assert not signing.verify_webhook_signature("secret-secret-secret", "job2", sig)
    assert not signing.verify_webhook_signature("secret-secret-secret", "job1", None)


def test_result_url_key_is_domain_separated_from_the_webhook_signature():
    secret = "secret-secret-secret"
    sig = signing.result_signature(secret, "results/a/0.png", 100)
    assert sig != signing.webhook_signature(secret, "results/a/0.png\n100")
    assert signing.verify_result_signature(secret, "results/a/0.png", "100", sig, now=99)
    assert not signing.verify_result_signature(secret, "results/a/0.png", "100", sig, now=101)
    assert not signing.verify_result_signature(secret, "results/a/1.png", "100", sig, now=99)


def test_config_names_the_bad_or_missing_key():
    with pytest.raises(ConfigError, match="missing required key.*api_token"):
        ServiceConfig.from_mapping({"stack": "s"})
    with pytest.raises(ConfigError, match="unknown service config key.*api_tokn"):
        make_config(api_tokn="x")
    with pytest.raises(ConfigError, match="max_body_bytes must be an integer"):
        make_config(max_body_bytes="big")
    with pytest.raises(ConfigError, match="port must be"):
        make_config(port=70000)
    with pytest.raises(ConfigError, match="at least 16"):
        make_config(api_token="short")
    with pytest.raises(ConfigError, match="api_token and webhook_secret must differ"):
        make_config(api_token="the-same-secret-for-both", webhook_secret="the-same-secret-for-both")
    with pytest.raises(ConfigError, match="runpod_endpoint_base must be an http"):
        make_config(runpod_endpoint_base="ftp://x")
    assert "ApiTokenValue" not in repr(make_config())


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan")])
def test_config_refuses_a_runpod_timeout_that_no_call_could_keep(timeout):
    # 0 or less times every /run out at once (each job marked failed); inf or nan breaks the Worker's abort timer
    with pytest.raises(ConfigError, match="runpod_timeout_s must be"):
        make_config(runpod_timeout_s=timeout)
    assert make_config(runpod_timeout_s=2.5).runpod_timeout_s == 2.5


def test_config_refuses_a_signed_url_ttl_whose_expiry_would_break_every_status_answer():
    # 10**11 s put the URL's expiry past year 9999: formatting it raised, and every GET /api/status answered 500
    with pytest.raises(ConfigError, match="signed_url_ttl_s must be at most 604800"):
        make_config(signed_url_ttl_s=10**11)
    assert make_config(signed_url_ttl_s=604_800).signed_url_ttl_s == 604_800


@pytest.mark.parametrize("endpoint", ["localhost:9000", "127.0.0.1:9000", "s3.example.com"])
def test_config_refuses_a_store_endpoint_without_its_scheme_naming_the_key(endpoint):
    # botocore would refuse it later with a bare ValueError traceback, and the server would not start
    with pytest.raises(ConfigError, match="s3_endpoint_url must be an http"):
        make_config(s3_endpoint_url=endpoint)
    assert make_config(s3_endpoint_url="http://" + endpoint).s3_endpoint_url == "http://" + endpoint


def test_workflow_files_are_validated_with_the_file_named():
    assert [w.id for w in Registry.from_dir(WORKFLOWS).all()] == ["flux-schnell", "sdxl-txt2img"]
    texts = {p.name: p.read_text() for p in WORKFLOWS.glob("*.json")}
    assert [w.id for w in Registry.from_texts(texts).all()] == ["flux-schnell", "sdxl-txt2img"]
    with pytest.raises(WorkflowError, match="bad.json: not valid JSON"):
        parse_workflow("{", "bad.json")
    with pytest.raises(WorkflowError, match="version must look like"):
        parse_workflow(json.dumps({"id": "a", "version": "b@1", "parameters": []}), "a.json")
    with pytest.raises(WorkflowError, match=r"parameters\[0\]"):
        parse_workflow(json.dumps({"id": "a", "version": "a@1", "parameters": [{"name": "x", "type": "blob"}]}), "a")
    with pytest.raises(WorkflowError, match="defined twice"):
        Registry.from_texts(list(texts.values()) * 2)


def test_shipped_workflows_load():
    """Every workflow file the image ships loads in the service, under its file's name: compared with the files
    there, not a list written here, so a team adding `workflows/<id>.json` ("Add a workflow", images/worker/README.md)
    is not failed by this test (nor CI, nor release.yml's build after it)."""
    from service_testkit import ROOT
    directory = ROOT / "images" / "worker" / "workflows"
    files = sorted(path.stem for path in directory.glob("*.json"))
    shipped = Registry.from_dir(directory).all()
    assert files, f"no workflow file in {directory}"
    assert sorted(w.id for w in shipped) == files


def test_migrations_runner_is_idempotent_and_compatible_with_wrangler_and_goldgate(tmp_path):
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    assert apply_sqlite(conn, MIGRATIONS) == ["0001_init.sql", "0002_idempotency_keys.sql",
                                              "0003_job_metrics_images.sql", "0004_retention_cursor.sql",
                                              "0005_job_run_policy.sql", "0006_job_metrics_covering_indexes.sql", "0007_jobs_in_flight_index.sql", "0008_delivery_source_cancel.sql",
                                              "0009_daily_spend.sql", "0010_job_client.sql", "0011_client_daily_spend.sql",
                                              "0012_job_list_indexes.sql"]
    assert apply_sqlite(conn, MIGRATIONS) == []
    cols = [r[1] for r in conn.execute("PRAGMA table_info(d1_migrations)")]
    assert cols == ["id", "name", "applied_at"]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "webhook_deliveries", "job_metrics", "idempotency_keys", "d1_migrations"} <= tables
    metric_cols = {r[1] for r in conn.execute("PRAGMA table_info(job_metrics)")}
    assert metric_cols == {"job_id", "stack", "status", "runpod_queue_duration_ms", "runpod_run_duration_ms",
                           "e2e_ms", "worker_image_tag", "workflow_version", "gpu_type", "cost_estimate_usd",
                           "created_at", "images"}
    conn.close()
    assert goldgate_apply(tmp_path / "db.sqlite", MIGRATIONS) == []


def test_migrations_runner_refuses_a_misnamed_file(tmp_path):
    (tmp_path / "1_init.sql").write_text("CREATE TABLE x (a);")
    with pytest.raises(MigrationError, match="must be named 0001_"):
        apply_sqlite(sqlite3.connect(":memory:", isolation_level=None), tmp_path)
