"""The cloud checklist against loopback stand-ins: the RunPod emulator (REST v2 + /health, in-process, no
worker ever started), the D1 stand-in (SQLite behind the REST API) and, in front of it on the same API
origin, the Workers Scripts schedules (each API Worker's Cron Triggers). A healthy STAGING/PROD pair
passes every applicable line; drifting one cloud fact at a time turns exactly its line red."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from ops_fixtures import build_stack_db

from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn, WorkerScripts
from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.logs import JsonLogger
from goldgate.ops import checklist, dr, retention
from goldgate.ops.checklist_facts import WORKER_DIR, read_worker_facts
from goldgate.ops.cloud_facts import CloudCredentials, CloudReading, gather_cloud, read_cloud
from goldgate.release.build import manifest_sha256
from goldgate.release.ledger import Ledger
from goldgate.runpod import ControlPlaneClient, EndpointConfig, EndpointPatch, RegistryCredential, Scaling
from goldgate.spec import STACKS_DIR, load_pulumi

REPO = "registry.example.com/your-org/goldgate-worker"
IMG_A, IMG_B, IMG_C = (f"{REPO}@sha256:{c * 64}" for c in "abc")
RP_KEY = "rp_cloud_checklist_key_0123456789abcdef"
CF_TOKEN = "cf-cloud-checklist-token-0123456789abcdef"
R2_SECRET = "r2-secret-never-printed-0123456789abcdef"
JOBS = 400  # 4 failed (1 %): under both stacks' error-rate thresholds
# models.yaml holds a model it says must be pinned before a PROD release: until it is, PROD's models line is red
# (tests of other lines set it aside).
UNPINNED = bool(read_worker_facts()[0].warnings)


@dataclass
class NoWorkers:
    """The emulator's launcher: the checklist reads the control plane only, so no worker should ever start. The
    fleet turns a launcher's exception into a logged start_failed, so the fixture asserts on the recorded calls."""

    images: list[str] = field(default_factory=list)

    def __call__(self, image: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        self.images.append(image)
        raise RuntimeError("the checklist reads the control plane only; no worker should ever start")


@pytest.fixture(scope="module")
def seed_sql(tmp_path_factory) -> bytes:
    """A migrated stack database as D1 would export it: jobs, applied deliveries, job_metrics, and
    deliveries that arrived again or late and were kept with applied=0 (the idempotency record)."""
    # The jobs ran on the images the stacks pin (IMG_B) and on the release before it (IMG_A, every failure's).
    path = build_stack_db(tmp_path_factory.mktemp("seed") / "db.sqlite", jobs=JOBS, fail_every=100,
                          tags=(IMG_A, IMG_B))
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_job_id, runpod_status, source, "
                     "applied, outcome, received_at) SELECT printf('%064x', 100000 + rowid), id, runpod_job_id, "
                     "'IN_PROGRESS', 'webhook', 0, 'out_of_order', finished_at FROM jobs WHERE rowid % 10 = 0")
        conn.execute("INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_job_id, runpod_status, source, "
                     "applied, outcome, received_at) SELECT printf('%064x', 200000 + rowid), id, runpod_job_id, "
                     "'FAILED', 'webhook', 0, 'terminal_conflict', finished_at FROM jobs "
                     "WHERE rowid % 25 = 1 AND status = 'completed'")
    lines = [ln for ln in conn.iterdump() if ln not in ("BEGIN TRANSACTION;", "COMMIT;")]
    conn.close()
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture(scope="module")
def seeded_image(seed_sql: bytes) -> bytes:
    """A D1 database as `seed_sql` imported through the stand-in's API leaves it, as its SQLite image: imported
    once, then copied into each test's databases (each import of the seed ran its ~1,700 statements again)."""
    with D1StandIn(CF_TOKEN, import_polls=0) as standin, CloudflareApi(CF_TOKEN, standin.api_base) as api:
        d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
        database_id = d1.create_database("goldgate-seed").uuid
        d1.import_sql(database_id, seed_sql)
        with standin.backend.lock:
            return standin.backend.get(database_id).conn.serialize()


def _seeded(d1: D1Client, standin: D1StandIn, name: str, image: bytes) -> str:
    """A database created through the API holding what importing the seed leaves (a new bookmark, as after an
    import)."""
    database_id = d1.create_database(name).uuid
    backend = standin.backend
    with backend.lock:
        db = backend.get(database_id)
        db.conn.deserialize(image)
        db.conn.execute("PRAGMA foreign_keys = ON")
        backend._snapshot(db)
    return database_id


@dataclass
class Cloud:
    emulator: RunPodEmulator
    control: ControlPlaneClient
    d1: D1Client
    d1_api_base: str
    database_id: str
    endpoint_ids: dict[str, str]
    stacks_dir: Path
    home: Path
    reports_dir: Path
    logs_dir: Path
    now: datetime
    standin: D1StandIn
    workers: WorkerScripts

    def read(self, stack: str = "staging") -> CloudReading:
        return read_cloud(stack, CloudCredentials({"staging": RP_KEY, "prod": RP_KEY}, CF_TOKEN), home=self.home,
                          stacks_dir=self.stacks_dir, reports_dir=self.reports_dir, logs_dir=self.logs_dir,
                          cloudflare_api_base=self.d1_api_base, now=self.now)

    def results(self, stack: str = "staging") -> dict[str, checklist.CheckResult]:
        return {r.id: r for r in checklist.run_checks(self.read(stack).facts)}

    def red(self) -> set[str]:
        return {i for i, r in self.results().items() if r.status == checklist.FAIL}

    def edit_stack_file(self, stack: str, **changes: object) -> None:
        path = self.stacks_dir / f"Pulumi.{stack}.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["config"]["goldgate:spec"].update(changes)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))

    def cli(self, *argv: str) -> list[str]:
        return [*argv, "--target", "cloud", "--stacks-dir", str(self.stacks_dir), "--home", str(self.home),
                "--cloudflare-api-base", self.d1_api_base]


@functools.cache
def _repository_stack_file(name: str) -> str:
    return (STACKS_DIR / name).read_text()


@functools.cache
def _parsed_stack_file(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


def _write_stack_files(directory: Path, account: str, emulator: RunPodEmulator,
                       prod_retention: dict[str, Any] | None = None) -> None:
    """Copies of the repository's stack files, pinned to IMG_B, pointing at the stand-ins (PROD's D1 retention set
    to `prod_retention` if given). The repository's files are read and parsed once per process."""
    directory.mkdir()
    for stack in ("staging", "prod"):
        src = STACKS_DIR / f"Pulumi.{stack}.yaml"
        doc = copy.deepcopy(_parsed_stack_file(_repository_stack_file(src.name)))
        spec = doc["config"]["goldgate:spec"]
        if stack == "prod" and prod_retention is not None:
            spec["database"]["retention"] = prod_retention
        spec["image"] = IMG_B
        spec["cloud"] = {"cloudflare_account_id": account, "runpod_api_base": emulator.api_base,
                         "runpod_endpoint_base": emulator.endpoint_base}
        (directory / src.name).write_text(yaml.safe_dump(doc, sort_keys=False))


def _create_endpoint(control: ControlPlaneClient, stacks_dir: Path, stack: str) -> str:
    """The endpoint as `pulumi up` declares it (infra/components/gpu.py), R2 credentials in its env."""
    spec = load_pulumi(stack, stacks_dir)
    ep = spec.endpoint
    env = {**ep.env, "WORKFLOW_VERSION": spec.workflow_version, "WORKER_IMAGE_TAG": str(spec.image),
           "STACK": spec.name, "R2_SECRET_ACCESS_KEY": R2_SECRET}
    # workers_min 0: the checklist reads the control plane, so no worker process is needed here
    return control.create_endpoint(EndpointConfig(
        name=ep.name, image=str(spec.image), gpu_pools=ep.gpu_pools, env=env, gpu_count=ep.gpu_count,
        workers_min=0, workers_max=ep.workers_max, idle_timeout_s=ep.idle_timeout_s,
        scaling=Scaling(ep.scaler_type, ep.scaler_value), timeout_ms=ep.execution_timeout_ms,
        flashboot="FLASHBOOT" if ep.flashboot else "OFF")).id


def _ledger(home: Path) -> None:
    """The releases, recorded before the seeded jobs ran (they start 2026-11-01): the checklist judges the pinned
    image's jobs since the promotion that put it on PROD, as its smoke and later jobs follow it."""
    ledger, models = Ledger(home), manifest_sha256(WORKER_DIR)
    with mock.patch("goldgate.release.ledger.now_rfc3339", return_value="2026-10-31T00:00:00.000Z"):
        _releases(ledger, models)


def _releases(ledger: Ledger, models: str) -> None:
    for image in (IMG_A, IMG_B):
        ledger.append("build", image=image, release_id=f"r-{image[-4:]}", models_sha256=models)
        ledger.append("deploy", stack="staging", image=image)
        ledger.append("golden", stack="staging", image=image, passed=True, suite="full")
        intent = ledger.append("promotion", phase="intent", stack="prod", image=image, gate={"passed": True})
        ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", image=image,
                      prod_image=image, outcome="promoted", smoke_passed=True)


def _golden(reports: Path, now: datetime) -> None:
    checks = [{"name": "sdxl.image0.content_type", "passed": True, "detail": "image/png"},
              {"name": "sdxl.image0.size", "passed": True, "detail": "1234 bytes"}]
    reports.mkdir()
    (reports / "latest.json").write_text(json.dumps({
        "schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "image": IMG_B, "passed": True,
        "finished_at": (now - timedelta(minutes=5)).isoformat(), "failures": [], "latency_s": {"mean": 30.0},
        "cases": [{"id": "sdxl", "passed": True, "latency_s": 30.0, "images": [{"key": "k"}], "checks": checks}]}))


def _drill(home: Path, now: datetime, target: str = "cloud", stack: str = "staging", **more: Any) -> None:
    stamp = now.isoformat()
    dr.record(home, dr.DrillResult(stack=stack, target=target, passed=True, started_at=stamp, finished_at=stamp,
                                   backup_s=1.5, restore_s=2.0, rto_s=2.0, rpo_s=0.4, **more))


def _prune(home: Path, now: datetime, database_id: str, stack: str = "staging", **more: Any) -> None:
    report = retention.PruneReport(stack=stack, target="cloud", dry_run=False, keep_days=30, metrics_keep_days=None,
                                   jobs_before="-", metrics_before=None, deleted={"jobs": 12}, remaining={},
                                   unfinished_kept=0)
    retention.record(home, report, more.get("database", database_id), now.isoformat())


def _logs(directory: Path) -> None:
    """Log lines as exported from the cloud (Workers Logs / RunPod), one JSON object per line."""
    directory.mkdir()
    with (directory / "worker.jsonl").open("w") as fh:
        log = JsonLogger("worker", fh, stack="staging", workflow_version="sdxl-txt2img@1.0.0", worker_image_tag=IMG_B)
        log.info("models_loaded", message="6 model files present")
        log.bind(job_id="job-1", trace_id="0" * 32).info("job.completed", status="completed")


@pytest.fixture
def cloud(tmp_path: Path, seeded_image: bytes, scan_once: None) -> Iterator[Cloud]:
    now = datetime.now(UTC)
    launches = NoWorkers()
    emulator = RunPodEmulator(EmulatorConfig(api_key=RP_KEY, logs_dir=tmp_path / "emulator"),
                              launcher=launches).start()
    standin = D1StandIn(CF_TOKEN, import_polls=0).start()
    workers = standin.workers
    api = CloudflareApi(CF_TOKEN, standin.api_base)
    control = ControlPlaneClient(RP_KEY, emulator.api_base)
    try:
        d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
        database_id = _seeded(d1, standin, "goldgate-staging", seeded_image)
        _seeded(d1, standin, "goldgate-prod", seeded_image)
        stacks = tmp_path / "stacks"
        # D1 retention: PROD's by its Cron Trigger, STAGING's by a `goldgate prune --cloud` a day ago
        _write_stack_files(stacks, standin.account_id, emulator, prod_retention={"keep_days": 30, "cron": "30 3 * * *"})
        # Both API Workers as `pulumi up` deployed them: PROD's with the Cron Trigger its file declares
        workers.schedules.update({"goldgate-api-staging": [], "goldgate-api-prod": ["30 3 * * *"]})
        workers.plain_text.update({"goldgate-api-staging": {"STACK": "staging"},
                                   "goldgate-api-prod": {"STACK": "prod", "RETENTION_KEEP_DAYS": "30"}})
        ids = {stack: _create_endpoint(control, stacks, stack) for stack in ("staging", "prod")}
        home = tmp_path / "home"
        _ledger(home)
        _golden(tmp_path / "reports", now)
        _drill(home, now)
        _drill(home, now, stack="prod")
        _prune(home, now - timedelta(days=1), database_id)
        _logs(tmp_path / "logs")
        yield Cloud(emulator, control, d1, standin.api_base, database_id, ids, stacks, home, tmp_path / "reports",
                    tmp_path / "logs", now, standin, workers)
        # A start planned but not yet launched (the fleet launches on a thread) is a worker record already.
        with emulator.backend.lock:
            planned = list(emulator.backend.workers)
        assert not launches.images and not planned, f"workers started: {launches.images or planned}"
    finally:
        control.close()
        api.close()
        emulator.stop()
        standin.stop()


def test_a_healthy_cloud_pair_passes_every_applicable_line(cloud):
    reading = cloud.read()
    results = checklist.run_checks(reading.facts)
    assert {r.id: r.evidence for r in results if r.status == checklist.FAIL} == {}
    na = {r.id: r.evidence for r in results if r.status == checklist.NA}
    assert set(na) <= {"rollback_smoke"}, na  # no rollback was performed in this history
    by_id = {r.id: r for r in results}
    # idempotency is judged on the deliveries D1 recorded, never by replaying one into the cloud
    assert "read-only" in by_id["webhook_idempotent"].evidence and "out_of_order" in by_id["webhook_idempotent"].evidence
    assert reading.endpoints["staging"].endpoint_id == cloud.endpoint_ids["staging"]
    assert reading.endpoints["prod"].endpoint_id == cloud.endpoint_ids["prod"] != cloud.endpoint_ids["staging"]
    assert reading.facts.images == {"staging": IMG_B, "prod": IMG_B}
    assert reading.database_id == cloud.database_id
    assert all("/health" in n for n in reading.notes), reading.notes  # nothing drifted: only the health counters


def test_the_stacks_database_past_the_first_page_of_the_d1_list_is_found(cloud, seed_sql):
    # Drill scratch databases left behind (`<database.name>-drill-<stamp>`) match a search for the stack's
    # database name; the stack's database, recreated after them, is listed on a later page.
    cloud.d1.delete_database(cloud.database_id)
    with cloud.standin.backend.lock:
        for i in range(2_500):
            cloud.standin.backend.create(f"goldgate-staging-drill-{i:05d}")
    recreated = cloud.d1.create_database("goldgate-staging").uuid
    cloud.d1.import_sql(recreated, seed_sql)
    _prune(cloud.home, cloud.now, recreated)  # the old database's prune is no evidence for the new one
    seen = len(cloud.standin.requests)
    reading = cloud.read()
    assert reading.database_id == recreated
    assert {r.id: r.evidence for r in checklist.run_checks(reading.facts) if r.status == checklist.FAIL} == {}
    listed = [p for m, p in cloud.standin.requests[seen:] if m == "GET" and p.endswith("/d1/database")]
    assert len(listed) > 1  # the answer really spanned pages


def test_the_checklist_of_prod_reads_the_same_pair_and_passes(cloud):
    facts = gather_cloud("prod", CloudCredentials({"staging": RP_KEY, "prod": RP_KEY}, CF_TOKEN), home=cloud.home,
                         stacks_dir=cloud.stacks_dir, reports_dir=cloud.reports_dir, logs_dir=cloud.logs_dir,
                         cloudflare_api_base=cloud.d1_api_base, now=cloud.now)
    results = checklist.run_checks(facts)
    failing = {r.id: r.evidence for r in results if r.status == checklist.FAIL}
    assert set(failing) == ({"models_match"} if UNPINNED else set()), failing
    assert not UNPINNED or "unpinned in images/worker/models.yaml" in failing["models_match"]
    assert facts.stack == "prod" and set(facts.specs) == {"staging", "prod"}
    assert f"<= 2.00% over 200 jobs of {IMG_B}" in next(r for r in results if r.id == "error_rate").evidence


def test_prod_endpoint_running_another_image_than_the_pin_turns_exactly_one_line_red(cloud):
    cloud.control.update_endpoint(cloud.endpoint_ids["prod"], EndpointPatch(image=IMG_C))
    results = cloud.results()
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"prod_same_digest"}
    assert IMG_C in results["prod_same_digest"].evidence
    assert any(IMG_C in n and "pins" in n for n in cloud.read().notes)


def test_the_note_on_an_endpoint_off_its_pin_advises_a_command_that_restores_the_pin(cloud):
    # Before: it advised `goldgate deploy prod`, which argparse refuses (no --image) and which never deploys PROD.
    cloud.control.update_endpoint(cloud.endpoint_ids["prod"], EndpointPatch(image=IMG_C))
    [note] = [n for n in cloud.read().notes if IMG_C in n]
    assert note.endswith("restore the pin (`pulumi up --refresh --stack prod`) or find who patched the endpoint")


def test_a_network_volume_attached_to_prods_endpoint_turns_its_lines_red(cloud):
    cloud.control.update_endpoint(cloud.endpoint_ids["prod"], EndpointPatch(network_volumes=("vol-abc123",)))
    results = cloud.results()
    # the seed states this fact twice (Workflow/Models and Exit Criteria): both of its lines go red
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"no_network_volume",
                                                                              "exit_no_network_volume"}
    assert "vol-abc123" in results["no_network_volume"].evidence


def test_a_tag_instead_of_a_digest_in_prods_stack_file_turns_exactly_one_line_red(cloud):
    cloud.edit_stack_file("prod", image=f"{REPO}:latest")
    results = cloud.results()
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"prod_same_digest"}
    assert "not pinned by digest" in results["prod_same_digest"].evidence
    assert any("a tag" in n for n in cloud.read().notes)


def test_a_network_volume_in_prods_stack_file_is_red_on_the_same_lines(cloud):
    ep = yaml.safe_load((cloud.stacks_dir / "Pulumi.prod.yaml").read_text())["config"]["goldgate:spec"]["endpoint"]
    cloud.edit_stack_file("prod", endpoint={**ep, "network_volume_id": "vol-abc123"})
    results = cloud.results()
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"no_network_volume",
                                                                              "exit_no_network_volume"}
    assert "PROD must not use a network volume" in results["no_network_volume"].evidence


def test_an_unreadable_prod_stack_file_fails_with_its_error_not_a_traceback(cloud):
    (cloud.stacks_dir / "Pulumi.prod.yaml").write_text("config: [unclosed\n")
    results = cloud.results()
    assert results["staging_separate"].status == checklist.FAIL
    assert "not valid YAML" in results["staging_separate"].evidence


def test_a_tag_pinned_stack_file_with_an_unquoted_date_is_read_as_pulumi_reads_it(cloud):
    # Pulumi (YAML 1.2) reads `compatibility_date: 2025-09-01` as text, and so does the spec loader: the
    # checklist's second reading of a tag-pinned file must not turn it into a date and blame that field.
    cloud.edit_stack_file("prod", image=f"{REPO}:latest")
    path = cloud.stacks_dir / "Pulumi.prod.yaml"
    text = path.read_text()
    assert "compatibility_date: '2025-09-01'" in text
    path.write_text(text.replace("compatibility_date: '2025-09-01'", "compatibility_date: 2025-09-01"))
    results = cloud.results()
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"prod_same_digest"}
    assert "not pinned by digest" in results["prod_same_digest"].evidence


def test_a_stack_file_pinning_two_images_vouches_for_neither(cloud):
    # Pulumi refuses a key given twice; the checklist must not pick the last pin and call PROD promoted.
    path = cloud.stacks_dir / "Pulumi.prod.yaml"
    text = path.read_text()
    assert f"    image: {IMG_B}\n" in text
    path.write_text(text.replace(f"    image: {IMG_B}\n", f"    image: {IMG_A}\n    image: {IMG_B}\n"))
    results = cloud.results()
    assert results["prod_same_digest"].status == checklist.FAIL
    assert IMG_B not in results["prod_same_digest"].evidence
    assert "duplicate key" in results["staging_separate"].evidence


def test_empty_job_metrics_turns_exactly_the_percentiles_line_red(cloud):
    cloud.d1.query(cloud.database_id, "DELETE FROM job_metrics")
    results = cloud.results()
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"percentiles"}
    assert "no rows" in results["percentiles"].evidence


def test_a_missing_job_metrics_table_is_red_on_percentiles_and_on_the_error_rate_it_feeds(cloud):
    cloud.d1.query(cloud.database_id, "DROP TABLE job_metrics")
    results = cloud.results()
    # the service computes the error rate from job_metrics too: without the table neither can be judged
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"percentiles", "error_rate"}
    assert "job_metrics" in results["percentiles"].evidence


def test_workflow_version_missing_from_the_endpoint_env_turns_exactly_one_line_red(cloud):
    ep = cloud.control.get_endpoint(cloud.endpoint_ids["staging"])
    env = {k: v for k, v in ep.env.items() if k != "WORKFLOW_VERSION"}
    cloud.control.update_endpoint(ep.id, EndpointPatch(env=env))
    assert cloud.red() == {"workflow_version"}


def test_runpods_idle_scale_down_of_max_workers_is_reported_not_failed(cloud):
    cloud.control.update_endpoint(cloud.endpoint_ids["staging"], EndpointPatch(workers_max=0))
    reading = cloud.read()
    assert not checklist.failed(checklist.run_checks(reading.facts))
    assert reading.endpoints["staging"].idle_scaled_down
    assert any("scaled max workers down to 0 (declared 3)" in n for n in reading.notes), reading.notes


def test_a_registry_credential_the_stack_file_does_not_declare_is_reported(cloud):
    registry = cloud.control.create_registry(RegistryCredential("by-hand", "robot", "hunter2-token"))
    cloud.control.update_endpoint(cloud.endpoint_ids["staging"], EndpointPatch(registry=registry.id))
    reading = cloud.read()
    assert not checklist.failed(checklist.run_checks(reading.facts))  # a note, not a red line
    assert reading.endpoints["staging"].registry == registry.id
    [note] = [n for n in reading.notes if "registry credential" in n]
    assert f"pulls with registry credential {registry.id}, which stacks/Pulumi.staging.yaml does not declare" in note
    assert "robot" not in " ".join(reading.notes) and "hunter2" not in " ".join(reading.notes)


def test_an_endpoint_without_the_declared_registry_credential_is_reported_until_it_has_it(cloud):
    registry = cloud.control.create_registry(RegistryCredential("declared", "robot", "hunter2-token"))
    path = cloud.stacks_dir / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["goldgate:spec"]["endpoint"]["registry_credential_id"] = registry.id
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    [note] = [n for n in cloud.read().notes if "registry credential" in n]
    assert f"names no registry credential, but stacks/Pulumi.staging.yaml declares {registry.id}" in note
    cloud.control.update_endpoint(cloud.endpoint_ids["staging"], EndpointPatch(registry=registry.id))
    assert not [n for n in cloud.read().notes if "registry credential" in n]


def test_a_non_terminal_delivery_applied_after_the_terminal_one_fails_idempotency(cloud):
    cloud.d1.query(cloud.database_id,
                   "INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_job_id, runpod_status, source, applied, "
                   "outcome, received_at) SELECT printf('%064x', 999999), id, runpod_job_id, 'IN_PROGRESS', 'webhook', "
                   "1, 'applied', '2030-01-01T00:00:00.000Z' FROM jobs WHERE id = 'job-0000001'")
    results = cloud.results()
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"webhook_idempotent"}
    assert "job-0000001" in results["webhook_idempotent"].evidence


def test_without_repeated_deliveries_on_record_idempotency_is_na_with_the_reason(cloud):
    cloud.d1.query(cloud.database_id, "DELETE FROM webhook_deliveries WHERE applied = 0")
    results = cloud.results()
    assert not {i for i, r in results.items() if r.status == checklist.FAIL}
    assert results["webhook_idempotent"].status == checklist.NA
    assert "no webhook is replayed" in results["webhook_idempotent"].evidence


def test_a_missing_prod_endpoint_is_red_and_named(cloud):
    cloud.control.delete_endpoint(cloud.endpoint_ids["prod"])
    results = cloud.results()
    assert results["staging_separate"].status == checklist.FAIL
    assert "RunPod has no endpoint named goldgate-prod" in results["staging_separate"].evidence
    assert results["prod_same_digest"].status == checklist.FAIL


def test_a_local_drill_does_not_count_for_the_cloud(cloud):
    dr.latest_path(cloud.home, "staging", "cloud").unlink()  # no cloud drill of staging on record
    _drill(cloud.home, cloud.now, target="local")
    results = cloud.results()
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"dr_drill"}
    assert "--target cloud" in results["dr_drill"].evidence


def test_a_stale_cloud_drill_advises_a_drill_of_d1_not_of_the_local_stack(cloud):
    # Before: "run `goldgate dr-drill`", which argparse refuses (no stack) and which, given one, drills the local
    # stack: a local drill is no evidence for D1, so the line stayed red after the operator did as told.
    _drill(cloud.home, cloud.now - timedelta(days=8))
    line = cloud.results()["dr_drill"]
    assert line.status == checklist.FAIL
    assert line.evidence.endswith("run `goldgate dr-drill staging --target cloud --database-id <uuid>`")


def test_a_local_drill_after_the_cloud_drill_leaves_the_cloud_evidence_standing(cloud, stack_db, tmp_path):
    # The 3 a.m. runbook drills the local stack after the nightly cloud drill: the cloud checklist still reads
    # the cloud drill, not the local one that came after it.
    local = dr.run_local_drill("staging", stack_db(tmp_path / "local.sqlite", jobs=5), cloud.home)
    assert local.passed, local.error
    assert cloud.results()["dr_drill"].status == checklist.PASS


def test_a_drill_of_another_d1_database_does_not_count_for_the_stack(cloud):
    # `--database-id` is typed by hand: a drill of PROD's database recorded under staging proves nothing
    # about staging's backups.
    other = next(d.uuid for d in cloud.d1.list_databases() if d.name == "goldgate-prod")
    _drill(cloud.home, cloud.now, database_id=other)
    results = cloud.results()
    assert {i for i, r in results.items() if r.status == checklist.FAIL} == {"dr_drill"}
    assert other in results["dr_drill"].evidence and cloud.database_id in results["dr_drill"].evidence
    _drill(cloud.home, cloud.now, database_id=cloud.database_id)
    assert cloud.results()["dr_drill"].status == checklist.PASS


def test_d1_retention_is_green_by_a_declared_cron_or_a_recent_prune_of_the_stacks_database(cloud):
    assert "Cron Trigger (30 3 * * * UTC)" in cloud.results("prod")["d1_retention"].evidence
    line = cloud.results()["d1_retention"]
    assert line.status == checklist.PASS and "deleted 12 jobs 1.0 days ago" in line.evidence, line


def _prod_red(cloud: Cloud) -> dict[str, str]:
    return {i: r.evidence for i, r in cloud.results("prod").items() if r.status == checklist.FAIL
            and not (UNPINNED and i == "models_match")}


def test_a_declared_cron_trigger_that_was_never_deployed_is_red_until_pulumi_up_deploys_it(cloud):
    # The stack file says retention, but nobody ran `pulumi up` since: nothing prunes D1 in the cloud.
    cloud.workers.schedules["goldgate-api-prod"] = []
    red = _prod_red(cloud)
    assert set(red) == {"d1_retention"}
    assert "declares database.retention (Cron Trigger 30 3 * * * UTC)" in red["d1_retention"]
    assert "API Worker goldgate-api-prod has no Cron Trigger" in red["d1_retention"]
    assert red["d1_retention"].endswith("`pulumi up --stack prod` deploys it")
    # what `pulumi up` does for the WorkersCronTrigger resource: PUT the declared schedule
    with CloudflareApi(CF_TOKEN, cloud.d1_api_base) as api:
        api.call("PUT", f"/accounts/{cloud.standin.account_id}/workers/scripts/goldgate-api-prod/schedules",
                 json=[{"cron": "30 3 * * *"}])
    line = cloud.results("prod")["d1_retention"]
    assert line.status == checklist.PASS and "read from Cloudflare" in line.evidence, line


def test_a_deployed_cron_other_than_the_declared_one_is_red_naming_both(cloud):
    cloud.workers.schedules["goldgate-api-prod"] = ["0 12 * * *"]
    red = _prod_red(cloud)
    assert set(red) == {"d1_retention"}
    assert "30 3 * * *" in red["d1_retention"] and "runs Cron Trigger(s) 0 12 * * *" in red["d1_retention"]
    assert "`pulumi up --stack prod`" in red["d1_retention"]


@pytest.mark.parametrize("deployed", [{}, {"RETENTION_KEEP_DAYS": "90"},
                                      {"RETENTION_KEEP_DAYS": "30", "RETENTION_METRICS_KEEP_DAYS": "7"}],
                         ids=["none", "other-days", "metrics-too"])
def test_a_cron_trigger_on_a_worker_deployed_with_other_retention_settings_is_red(cloud, deployed):
    # Before: the deployed Cron Trigger alone turned the line green, and it told the stack file's 30 days as what
    # prunes D1: the file edited since the last `pulumi up` (or a Worker without RETENTION_KEEP_DAYS, whose
    # scheduled run prunes nothing) went unnoticed.
    cloud.workers.plain_text["goldgate-api-prod"] = {"STACK": "prod", **deployed}
    red = _prod_red(cloud)
    assert set(red) == {"d1_retention"}
    assert "RETENTION_KEEP_DAYS=30" in red["d1_retention"]
    assert red["d1_retention"].endswith("`pulumi up --stack prod` deploys it")


def test_a_declared_retention_on_a_worker_that_does_not_exist_is_red(cloud):
    del cloud.workers.schedules["goldgate-api-prod"]
    red = _prod_red(cloud)
    assert set(red) == {"d1_retention"}
    assert "has no Worker named goldgate-api-prod: `pulumi up --stack prod` deploys it" in red["d1_retention"]


def test_a_token_that_cannot_read_workers_fails_only_the_stack_that_declares_retention(cloud):
    cloud.workers.readable = False
    red = _prod_red(cloud)
    assert set(red) == {"d1_retention"}
    assert "Workers Scripts Read" in red["d1_retention"] and CF_TOKEN not in red["d1_retention"]
    assert cloud.red() == set()  # STAGING declares no retention: its evidence is its prune record, read from home


def test_without_a_declared_cron_or_a_prune_record_d1_retention_is_red(cloud):
    retention.record_path(cloud.home, "staging", "cloud").unlink()
    assert cloud.red() == {"d1_retention"}
    evidence = cloud.results()["d1_retention"].evidence
    assert "10 GB" in evidence and "database.retention" in evidence and "goldgate prune staging" in evidence


def test_a_stale_prune_or_one_of_another_database_is_no_retention_evidence(cloud):
    _prune(cloud.home, cloud.now - timedelta(days=40), cloud.database_id)
    assert cloud.red() == {"d1_retention"}
    assert "40.0 days ago, not within 31 days" in cloud.results()["d1_retention"].evidence
    other = next(d.uuid for d in cloud.d1.list_databases() if d.name == "goldgate-prod")
    _prune(cloud.home, cloud.now, cloud.database_id, database=other)
    assert cloud.red() == {"d1_retention"}
    assert other in cloud.results()["d1_retention"].evidence
    # a local prune says nothing of D1
    retention.record_path(cloud.home, "staging", "cloud").unlink()
    local = retention.PruneReport(stack="staging", target="local", dry_run=False, keep_days=30,
                                  metrics_keep_days=None, jobs_before="-", metrics_before=None, deleted={"jobs": 1},
                                  remaining={}, unfinished_kept=0)
    retention.record(cloud.home, local, "db.sqlite", cloud.now.isoformat())
    assert cloud.red() == {"d1_retention"}


def test_a_d1_missing_a_migration_turns_the_migrations_line_red_and_says_pulumi_up(cloud):
    cloud.d1.query(cloud.database_id, "DELETE FROM d1_migrations WHERE name = '0003_job_metrics_images.sql'")
    assert cloud.red() == {"db_migrated"}
    evidence = cloud.results()["db_migrated"].evidence
    assert "0003_job_metrics_images.sql" in evidence and "pulumi up --stack staging" in evidence
    assert cloud.results("prod")["db_migrated"].status == checklist.PASS


def test_an_image_built_from_another_model_manifest_turns_the_image_models_line_red(cloud):
    Ledger(cloud.home).append("build", image=IMG_B, release_id="r-bbbb", models_sha256="f" * 64)
    assert cloud.red() == {"image_models"}


def test_cli_checklist_cloud_passes_and_never_prints_a_secret(cloud, capsys, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)
    argv = cloud.cli("checklist", "staging", "--reports-dir", str(cloud.reports_dir), "--logs-dir", str(cloud.logs_dir))
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert data["passed"] is True and data["target"] == "cloud" and len(data["checks"]) == 40
    assert set(data["cloud"]["endpoints"]) == {"staging", "prod"}
    assert main(argv) == 0
    text = capsys.readouterr()
    assert "READY" in text.out and "cloud notes:" in text.out
    for secret in (RP_KEY, CF_TOKEN, R2_SECRET):
        assert secret not in out.out + out.err + text.out + text.err


def test_cli_checklist_cloud_names_a_missing_credential_in_one_line(cloud, capsys, monkeypatch):
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.delenv("RUNPOD_API_KEY_STAGING", raising=False)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)
    assert main(cloud.cli("checklist", "staging")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("goldgate: error: RUNPOD_API_KEY is not set") and "\n" not in err
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    assert main(cloud.cli("checklist", "staging")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("goldgate: error: CLOUDFLARE_API_TOKEN is not set") and "\n" not in err


def test_cli_checklist_cloud_with_a_wrong_runpod_key_fails_the_lines_with_the_reason(cloud, capsys, monkeypatch):
    wrong = "rp_wrong_key_not_to_be_printed_42"
    monkeypatch.setenv("RUNPOD_API_KEY", wrong)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)
    argv = cloud.cli("checklist", "staging", "--reports-dir", str(cloud.reports_dir), "--logs-dir", str(cloud.logs_dir))
    assert main([*argv, "--json"]) == 1
    out = capsys.readouterr()
    data = json.loads(out.out)
    separate = next(c for c in data["checks"] if c["id"] == "staging_separate")
    assert separate["status"] == "fail" and "401" in separate["evidence"]
    assert "staging: staging:" not in separate["evidence"]  # the stack is named once
    assert wrong not in out.out + out.err


def test_cli_refuses_a_stack_file_with_a_placeholder_account_id_in_one_line(tmp_path, capsys, monkeypatch):
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, stacks)
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)
    for command in ("checklist", "metrics"):
        assert main([command, "staging", "--target", "cloud", "--stacks-dir", str(stacks)]) == 1
        err = capsys.readouterr().err.strip()
        assert "cloudflare_account_id" in err and "\n" not in err
    assert main(["checklist", "nope", "--target", "cloud", "--stacks-dir", str(stacks)]) == 1
    assert "Pulumi.nope.yaml does not exist" in capsys.readouterr().err


def test_cli_refuses_a_database_id_that_is_not_a_uuid(cloud, capsys, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)
    for command in ("checklist", "metrics"):
        assert main([*cloud.cli(command, "staging"), "--database-id", "../../user/tokens"]) == 1
        err = capsys.readouterr().err.strip()
        assert "is not a D1 uuid" in err and "\n" not in err
    argv = cloud.cli("metrics", "staging")
    assert main([*argv, "--database-id", cloud.database_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["count"] == JOBS


def test_cli_metrics_cloud_reads_job_metrics_from_d1(cloud, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)  # metrics read D1 only
    html = tmp_path / "metrics.html"
    assert main([*cloud.cli("metrics", "staging"), "--json", "--html", str(html)]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert data["stack"] == "staging" and data["overall"]["count"] == JOBS
    assert data["overall"]["error_rate"] == pytest.approx(0.01)
    assert data["overall"]["e2e_ms"]["p95"] is not None and html.read_text().lower().startswith("<!doctype html>")
    assert CF_TOKEN not in out.out + out.err
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    assert main(cloud.cli("metrics", "staging")) == 1
    assert capsys.readouterr().err.startswith("goldgate: error: CLOUDFLARE_API_TOKEN is not set")


def test_a_local_golden_run_in_latest_json_is_no_evidence_for_the_cloud(cloud):
    # The local and the cloud golden runs write the same latest.json: a local run's downloads said the cloud's
    # "Result upload ... /api/result/:key" line passed ("golden run downloaded N result(s)").
    path = cloud.reports_dir / "latest.json"
    kept = path.read_text()
    path.write_text(json.dumps({**json.loads(kept), "target": "local"}))
    try:
        results = cloud.results()
    finally:
        path.write_text(kept)
    assert results["result_via_api"].status == checklist.FAIL
    assert "no golden result downloads to show" in results["result_via_api"].evidence
    for line in ("golden_against_staging", "golden_report_latest"):
        assert results[line].status == checklist.FAIL, (line, results[line].evidence)
        assert "is a golden run on the 'local' target" in results[line].evidence
