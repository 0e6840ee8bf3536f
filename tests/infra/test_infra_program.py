"""The real Pulumi program under mocks (preview=False, Outputs returned and asserted), for both stacks."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_harness import (
    SECRETS,
    digest_ref,
    filled_stack_file,
    is_wire_secret,
    secret_lengths_the_program_and_worker_disagree_on,
    use_cloud,
)

from goldgate.errors import SpecError
from goldgate.spec import from_pulumi_config
from infra.components.api import api_url
from infra.policies import GuardrailError
from infra.program import ProgramSettings, StackOutputs, read_config, run
from infra.worker_bundle import MAIN_MODULE, WORKFLOWS_MODULE

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
STACKS = ("staging", "prod")


def _settings(stacks_dir: Path, tmp_path: Path) -> ProgramSettings:
    migrations = tmp_path / "migrations"
    migrations.mkdir(exist_ok=True)
    (migrations / "0001_init.sql").write_text("CREATE TABLE jobs (id TEXT PRIMARY KEY);\n")
    return ProgramSettings(stacks_dir=stacks_dir, migrations_dir=migrations)


def _traced(fn, *args):
    import traceback
    try:
        return fn(*args)
    except Exception:
        traceback.print_exc()
        raise


def _bindings(cloud: Any) -> dict[str, dict[str, Any]]:
    script = cloud.one("workersScript:WorkersScript")
    return {b["name"]: b for b in script.inputs["bindings"]}


def _wire_bindings(cloud: Any) -> Any:
    return cloud.one("workersScript:WorkersScript").wire["bindings"]


@pytest.mark.parametrize("stack", STACKS)
def test_program_declares_the_stack_with_wired_bindings_and_secret_credentials(stack, stacks_dir, tmp_path, bundle):
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    cloud = use_cloud(stack, doc)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        assert out.r2_access_key_id.is_secret is not None
        return pulumi.Output.all(out.endpoint_id, out.endpoint_base, out.bucket, out.d1_id, out.api_url,
                                 pulumi.Output.from_input(out.r2_secret_access_key).is_secret(),
                                 pulumi.Output.from_input(out.r2_access_key_id).is_secret(),
                                 out.r2_secret_access_key,
                                 # Wait for the last resources too, so every registration is recorded.
                                 out.api.script.id, out.storage.migrations.id, out.storage.lifecycle.id,
                                 ).apply(lambda v: _traced(check, out, *v[:8]))

    def check(out: StackOutputs, endpoint_id, endpoint_base, bucket, d1_id, url, secret_is_secret, key_is_secret,
              secret_value) -> None:
        db = cloud.one("d1Database:D1Database")
        endpoint = cloud.one("runpod:ServerlessEndpoint")
        token = cloud.registered[f"{stack}-r2-token"]  # the workers' token (the DR drill's is another)
        assert d1_id == db.id and endpoint_id == endpoint.id
        assert bucket == f"goldgate-{stack}-results" and out.image == doc["image"]
        assert out.workflow_version == doc["workflow_version"]
        assert url == f"https://goldgate-api-{stack}.example.workers.dev"
        assert endpoint_base == f"https://api.runpod.ai/v2/{endpoint_id}"
        # The R2 credentials: token id and sha256 of its value, and both stay secret.
        assert secret_is_secret and key_is_secret
        assert re.fullmatch(r"[0-9a-f]{64}", secret_value)
        assert f"{doc['cloud']['cloudflare_account_id']}_default_goldgate-{stack}-results" in token.inputs["policies"][0][
            "resources"]

        b = _bindings(cloud)
        assert b["DB"] == {"type": "d1", "name": "DB", "id": d1_id}
        assert b["RESULTS"] == {"type": "r2_bucket", "name": "RESULTS", "bucketName": bucket}
        assert b["RUNPOD_ENDPOINT_ID"]["text"] == endpoint_id
        assert b["RUNPOD_ENDPOINT_BASE"]["text"] == endpoint_base
        assert b["STACK"]["text"] == stack and b["WORKFLOW_VERSION"]["text"] == doc["workflow_version"]
        assert b["WORKER_IMAGE_TAG"]["text"] == doc["image"]
        # A secret binding makes Pulumi send (and store) the whole bindings list as a secret.
        assert is_wire_secret(_wire_bindings(cloud))
        for name in ("API_TOKEN", "WEBHOOK_SECRET", "RUNPOD_API_KEY"):
            assert b[name]["type"] == "secret_text", name
        assert b["RUNPOD_API_KEY"]["text"] == SECRETS["goldgate:runpodApiKey"]

        script = cloud.one("workersScript:WorkersScript").inputs
        assert script["mainModule"] == MAIN_MODULE and script["contentType"] == "text/x-python"
        assert script["compatibilityFlags"] == ["python_workers"]
        # Every line kept in Workers Logs (an API-uploaded script has none unless it asks): the v1 JSON lines are
        # what the runbook and docs/LOG_EVENTS.md search.
        assert script["observability"] == {"enabled": True, "headSamplingRate": 1,
                                           "logs": {"enabled": True, "invocationLogs": True, "headSamplingRate": 1}}
        assert {"service/app.py", "service/cloudflare_entry.py", WORKFLOWS_MODULE} <= set(script["files"])
        assert script["files"]["service/app.py"]["contentType"] == "text/x-python"

        ep = endpoint.inputs
        assert ep["image"] == doc["image"] and ep["name"] == f"goldgate-{stack}"
        assert ep["network_volume_ids"] == [] and ep["gpu_pools"] == ["ADA_24"]
        assert ep["api_base"] == "https://api.runpod.io"
        assert {"api_key", "env"} <= set(endpoint.secret_outputs)
        assert is_wire_secret(endpoint.wire["env"]) and is_wire_secret(endpoint.wire["api_key"])
        env = ep["env"]
        assert env["WORKFLOW_VERSION"] == doc["workflow_version"] and env["WORKER_IMAGE_TAG"] == doc["image"]
        assert env["STACK"] == stack and env["R2_BUCKET"] == bucket
        # The worker gives up (clearly, cancelling its prompt) 60 s before RunPod's 600 s executionTimeout.
        assert doc["endpoint"]["execution_timeout_ms"] == 600_000
        assert (env["COMFY_JOB_TIMEOUT_S"], env["COMFY_READY_TIMEOUT_S"]) == ("540", "300")
        assert env["R2_ENDPOINT_URL"] == f"https://{doc['cloud']['cloudflare_account_id']}.r2.cloudflarestorage.com"
        assert env["R2_ACCESS_KEY_ID"] == token.id and env["R2_SECRET_ACCESS_KEY"] == secret_value

        # PROD's D1, endpoint and bucket (it holds the DR drill's D1 backups) are protected; STAGING's are not.
        assert db.protect is (stack == "prod") and endpoint.protect is (stack == "prod")
        assert cloud.registered[f"{stack}-results"].protect is (stack == "prod")
        assert endpoint.protect is (stack == "prod")
        rules = cloud.registered[f"{stack}-results-lifecycle"].inputs["rules"]
        expire = next(r for r in rules if r["id"] == "expire-results")
        assert expire["deleteObjectsTransition"]["condition"]["maxAge"] == doc["storage"]["result_ttl_days"] * 86400
        assert any("abortMultipartUploadsTransition" in r for r in rules)
        migrations = cloud.one("cloudflare:D1Migrations")
        assert migrations.inputs["database_id"] == d1_id and "0001_init.sql" in migrations.inputs["migrations"]
        assert is_wire_secret(migrations.wire["api_token"])
        # Every resource is a child of one of the three components (or is the stack's Cloudflare provider).
        for r in cloud.registered.values():
            assert r.name.startswith(f"{stack}-"), r.name
            if r.type.startswith("goldgate:") or r.type.startswith("pulumi:providers:"):
                continue
            assert re.search(r"goldgate:(storage|gpu|api):", r.parent), (r.name, r.parent)

    program()


def test_staging_and_prod_share_no_resource_name(stacks_dir, tmp_path, bundle):
    claimed: dict[str, set[str]] = {}
    for stack in STACKS:
        cloud = use_cloud(stack, filled_stack_file(stack)["config"]["goldgate:spec"])

        @pulumi.runtime.test
        def program():
            spec, secrets, _ = read_config(stack)  # noqa: B023 - called right here, within the loop
            return run(spec, secrets, _settings(stacks_dir, tmp_path), bundle).d1_id

        program()
        names = set(cloud.registered)
        for r in cloud.registered.values():
            names.update(str(r.inputs[k]) for k in ("name", "scriptName", "bucketName") if k in r.inputs)
        claimed[stack] = names
    assert claimed["staging"] and claimed["prod"]
    assert not claimed["staging"] & claimed["prod"]


def test_prod_with_a_tag_instead_of_a_digest_fails_clearly():
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    doc["image"] = "registry.example.com/example/goldgate-worker:latest"
    use_cloud("prod", doc)
    with pytest.raises(SpecError, match=r"not pinned by digest: use repo@sha256:<64 hex>"):
        read_config("prod")


def test_prod_with_a_network_volume_fails_clearly():
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    doc["endpoint"]["network_volume_id"] = "vol_abc123"
    use_cloud("prod", doc)
    with pytest.raises(SpecError, match="PROD must not use a network volume"):
        read_config("prod")


def test_program_refuses_a_prod_spec_with_a_volume_even_past_spec_validation(stacks_dir, tmp_path, bundle):
    spec = from_pulumi_config("prod", filled_stack_file("prod")["config"]["goldgate:spec"])
    sneaky = dataclasses.replace(spec, endpoint=dataclasses.replace(spec.endpoint, network_volume_id="vol_abc"),
                                 image="registry.example.com/example/worker:v1")
    cloud = use_cloud("prod", filled_stack_file("prod")["config"]["goldgate:spec"])
    with pytest.raises(GuardrailError) as err:
        run(sneaky, None, _settings(stacks_dir, tmp_path), bundle)  # type: ignore[arg-type]
    assert "network volume vol_abc attached" in str(err.value) and "not pinned by digest" in str(err.value)
    assert not cloud.registered  # refused before any resource was declared


def test_program_refuses_a_stack_that_claims_the_other_stacks_names(stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["storage"]["bucket"] = "goldgate-prod-results"
    use_cloud("staging", doc)
    spec, secrets, _ = read_config("staging")
    with pytest.raises(GuardrailError, match="share 'goldgate-prod-results'"):
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)


def test_program_refuses_placeholders_left_in_the_stack_file(stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["cloud"]["cloudflare_account_id"] = "<CLOUDFLARE_ACCOUNT_ID>"
    doc["image"] = "registry.example.com/your-org/goldgate-worker@sha256:" + "0" * 64
    use_cloud("staging", doc)
    spec, secrets, _ = read_config("staging")
    with pytest.raises(SpecError) as err:
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    assert "cloud.cloudflare_account_id" in str(err.value) and "goldgate:spec.image" in str(err.value)


def test_missing_secret_is_named_with_the_command_to_set_it():
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    secrets = {k: v for k, v in SECRETS.items() if k != "goldgate:webhookSecret"}
    use_cloud("staging", doc, secrets)
    with pytest.raises(SpecError, match=r"(?s)goldgate:webhookSecret.*pulumi config set --secret"):
        read_config("staging")


def test_committed_stack_files_differ_only_where_placeholders_are_expected():
    for stack in STACKS:
        spec = from_pulumi_config(stack, filled_stack_file(stack)["config"]["goldgate:spec"])
        assert spec.role == stack and spec.image == digest_ref("release-1")
        assert spec.database.protect is (stack == "prod")


def test_main_module_runs_the_program_for_the_running_stack_with_the_real_service():
    import runpy

    cloud = use_cloud("staging", filled_stack_file("staging")["config"]["goldgate:spec"])

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(Path(__file__).resolve().parents[2] / "infra" / "__main__.py"), run_name="__main__")

    program()
    script = cloud.one("workersScript:WorkersScript").inputs
    assert "service/cloudflare_entry.py" in script["files"] and script["scriptName"] == "goldgate-api-staging"
    migrations = cloud.one("cloudflare:D1Migrations").inputs["migrations"]
    assert sorted(migrations) == sorted(p.name for p in MIGRATIONS.glob("*.sql"))


def test_main_module_reports_a_bad_stack_file_as_a_message_not_a_traceback():
    import runpy

    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    doc["image"] = "registry.example.com/example/goldgate-worker:v1"
    use_cloud("prod", doc)
    with pytest.raises(pulumi.RunError, match="not pinned by digest") as err:
        runpy.run_path(str(Path(__file__).resolve().parents[2] / "infra" / "__main__.py"), run_name="__main__")
    assert err.value.__cause__ is None


@pytest.mark.parametrize("key", sorted(SECRETS))
def test_a_secret_stored_in_plain_text_in_the_stack_file_is_refused_without_echoing_it(key):
    # `pulumi config set goldgate:<key> VALUE` without --secret writes the value into stacks/Pulumi.<stack>.yaml,
    # which is committed.
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc)
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **SECRETS},
                                  secret_keys=[k for k in SECRETS if k != key])
    with pytest.raises(SpecError) as err:
        read_config("staging")
    assert f"{key} is stored in plain text" in str(err.value) and "pulumi config set --secret" in str(err.value)
    assert SECRETS[key] not in str(err.value)
    assert not cloud.registered


def _refused_before_any_resource(stack: str, doc: dict[str, Any], stacks_dir: Path, tmp_path: Path,
                                 bundle: Any) -> str:
    """Run the program as the engine does (every registration made before the error still reaches it)."""
    cloud = use_cloud(stack, doc)
    message: list[str] = []

    @pulumi.runtime.test
    def program():
        with pytest.raises(SpecError) as err:  # from the spec loader or from the program's preflight
            spec, secrets, _ = read_config(stack)
            run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        message.append(str(err.value))

    program()
    assert not cloud.registered, sorted(cloud.registered)  # not a bucket, database or endpoint left half-deployed
    return message[0]


@pytest.mark.parametrize(("api", "expected"), [
    ({}, "needs public_base_url"),
    ({"route": "api.example.com/*"}, "route needs api.zone_id"),
])
def test_an_api_runpod_cannot_reach_is_refused_before_any_resource_is_declared(api, expected, stacks_dir, tmp_path,
                                                                               bundle):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    del doc["api"]["public_base_url"]
    doc["api"].update(api)
    assert expected in _refused_before_any_resource("staging", doc, stacks_dir, tmp_path, bundle)


@pytest.mark.parametrize(("where", "value", "expected"), [
    ("runpod_endpoint_base", "api.runpod.ai/v2", "goldgate:spec.cloud.runpod_endpoint_base"),
    ("runpod_api_base", "api.runpod.io", "goldgate:spec.cloud.runpod_api_base"),
    ("runpod_api_base", "http://api.runpod.io", "goldgate:spec.cloud.runpod_api_base"),  # the key in clear text
])
def test_a_runpod_base_url_that_is_not_https_is_refused_before_any_resource_is_declared(where, value, expected,
                                                                                        stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["cloud"][where] = value
    message = _refused_before_any_resource("staging", doc, stacks_dir, tmp_path, bundle)
    assert expected in message and "https://" in message


def test_a_custom_domain_given_as_a_url_is_refused_before_any_resource_is_declared(stacks_dir, tmp_path, bundle):
    # It would become the Worker's custom domain hostname and RunPod's webhook base (https://https://...).
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["api"].update(custom_domain="https://api.example.com/", zone_id="0123456789abcdef0123456789abcdef")
    message = _refused_before_any_resource("staging", doc, stacks_dir, tmp_path, bundle)
    assert "goldgate:spec.api.custom_domain" in message and "hostname" in message


@pytest.mark.parametrize("base", ["http://api.cloudflare.com/client/v4",
                                  "http://user:pa55word@api.cloudflare.com/client/v4"])
def test_a_cloudflare_api_base_that_is_not_https_is_refused(base: str):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    use_cloud("staging", doc)
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(doc), **SECRETS, "goldgate:cloudflareApiBase": base},
                                  secret_keys=list(SECRETS))
    with pytest.raises(SpecError, match=r"goldgate:cloudflareApiBase .*https://") as refused:
        read_config("staging")
    assert "pa55word" not in str(refused.value)  # a password put in the URL is not repeated


@pytest.mark.parametrize(("key", "value"), [
    ("goldgate:webhookSecret", "short-secret-15"),
    ("goldgate:apiToken", "short-token-015"),
    ("goldgate:apiToken", ""),
    ("goldgate:runpodApiKey", ""),
    ("goldgate:cloudflareApiToken", "   "),
])
def test_a_secret_the_deployed_stack_cannot_use_is_refused_without_echoing_it(key, value):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc, {**SECRETS, key: value})
    with pytest.raises(SpecError) as err:
        read_config("staging")
    assert key in str(err.value) and "pulumi config set --secret" in str(err.value)
    if value.strip():
        assert value not in str(err.value)
    assert not cloud.registered


def test_an_api_token_equal_to_the_webhook_secret_is_refused_without_echoing_it():
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    same = "one-value-for-token-and-secret"
    cloud = use_cloud("staging", doc, {**SECRETS, "goldgate:apiToken": same, "goldgate:webhookSecret": same})
    with pytest.raises(SpecError, match="goldgate:apiToken and goldgate:webhookSecret hold the same value") as err:
        read_config("staging")
    assert same not in str(err.value) and not cloud.registered


@pytest.mark.parametrize("key", ["goldgate:webhookSecret", "goldgate:apiToken"])
def test_the_shortest_api_secret_the_program_accepts_is_one_the_api_worker_accepts(key):
    field = {"goldgate:webhookSecret": "webhook_secret", "goldgate:apiToken": "api_token"}[key]
    assert secret_lengths_the_program_and_worker_disagree_on(key, field, "s") == [], key


def test_a_workers_dev_url_naming_another_script_is_refused_before_any_resource_is_declared(stacks_dir, tmp_path,
                                                                                           bundle):
    # workers.dev serves a Worker at https://<script name>.<account subdomain>.workers.dev: after a rename, the
    # old URL would send every client call and RunPod webhook to a Worker that is not this one.
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["api"]["script_name"] = "goldgate-api-stg"
    message = _refused_before_any_resource("staging", doc, stacks_dir, tmp_path, bundle)
    assert "https://goldgate-api-stg.example.workers.dev" in message and "public_base_url" in message


@pytest.mark.parametrize("route", ["api.example.com/*", "https://api.example.com/*", "*api.example.com/*"])
def test_the_api_address_of_a_route_only_stack_is_its_host(route):
    # RunPod's webhooks and the smoke tests go to this address; Cloudflare accepts routes with a scheme.
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    del doc["api"]["public_base_url"]
    doc["api"].update(route=route, zone_id="0123456789abcdef0123456789abcdef")
    spec = from_pulumi_config("staging", doc)
    assert api_url(spec) == "https://api.example.com"


@pytest.mark.parametrize("jurisdiction", ["eu", "fedramp"])
def test_the_worker_binds_the_results_bucket_in_its_jurisdiction(jurisdiction, stacks_dir, tmp_path, bundle):
    # An EU or FedRAMP bucket is only found within its jurisdiction: a binding without it names a bucket that does
    # not exist, and the Worker could store and serve no result.
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["storage"]["jurisdiction"] = jurisdiction
    cloud = use_cloud("staging", doc)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("staging")
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return pulumi.Output.all(out.bucket, out.api.script.id).apply(lambda v: check(v[0]))

    def check(bucket: str) -> None:
        for bucket_name in ("staging-results", "staging-backups"):
            assert cloud.registered[bucket_name].inputs["jurisdiction"] == jurisdiction
        assert _bindings(cloud)["RESULTS"] == {"type": "r2_bucket", "name": "RESULTS", "bucketName": bucket,
                                               "jurisdiction": jurisdiction}

    program()


@pytest.mark.parametrize(("route", "why"), [
    ("*.api.example.com/*", "subdomains"),        # matches x.api.example.com, never api.example.com itself
    ("http://api.example.com/*", "http://"),      # matches plain-http requests only; webhooks come over https
    ("api.example.com/v1/*", "/v1/*"),            # /api/... and /healthz are outside it
    ("api.example.com", "(/)"),                   # the root page alone
])
def test_a_route_that_does_not_serve_its_hosts_https_root_needs_a_public_base_url(route, why, stacks_dir, tmp_path,
                                                                                   bundle):
    # The derived address would send RunPod's webhooks and every client call where the Worker never answers.
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    del doc["api"]["public_base_url"]
    doc["api"].update(route=route, zone_id="0123456789abcdef0123456789abcdef")
    message = _refused_before_any_resource("staging", doc, stacks_dir, tmp_path, bundle)
    assert "public_base_url" in message and why in message
    doc["api"]["public_base_url"] = "https://v1.api.example.com"
    assert api_url(from_pulumi_config("staging", doc)) == "https://v1.api.example.com"


def test_request_count_scaling_is_refused_before_any_resource_is_declared(stacks_dir, tmp_path, bundle):
    # The endpoint's provider refuses it (every spec carries an idle timeout, which RunPod rejects beside it), but only
    # when the engine checks the endpoint: by then the bucket, database and token would already be created.
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["endpoint"]["scaler_type"] = "REQUEST_COUNT"
    message = _refused_before_any_resource("staging", doc, stacks_dir, tmp_path, bundle)
    assert "goldgate:spec.endpoint.scaler_type" in message and "QUEUE_DELAY" in message


@pytest.mark.parametrize("stack", STACKS)
def test_where_prods_data_lives_no_pulumi_operation_deletes_it(stack, stacks_dir, tmp_path, bundle):
    # protect stops `pulumi destroy` and replacements while it is set; retainOnDelete still holds after someone runs
    # `pulumi state unprotect` (or a stack-file change drops the resource): PROD's D1 (jobs, deliveries) and its
    # buckets (results, and the DR drill's D1 backups) are left in Cloudflare, never deleted.
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    cloud = use_cloud(stack, doc)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return pulumi.Output.all(out.d1_id, out.bucket, out.api.script.id).apply(lambda _: check())

    def check() -> None:
        prod = stack == "prod"
        for kind in ("d1Database:D1Database", "r2Bucket:R2Bucket"):
            found = cloud.by_type(kind)
            assert found and {(r.protect, r.retain_on_delete) for r in found} == {(prod, prod)}, kind
        # The rest is rebuilt from the program: removing it on `pulumi destroy` loses nothing.
        for kind in ("workersScript:WorkersScript", "apiToken:ApiToken", "cloudflare:D1Migrations"):
            assert not [r for r in cloud.by_type(kind) if r.retain_on_delete], kind

    program()


def test_a_staging_database_marked_protect_is_also_retained(stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["database"]["protect"] = True
    cloud = use_cloud("staging", doc)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("staging")
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return out.d1_id.apply(lambda _: check())

    def check() -> None:
        db = cloud.one("d1Database:D1Database")
        assert db.protect and db.retain_on_delete

    program()
