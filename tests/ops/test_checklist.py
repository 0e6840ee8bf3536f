"""The readiness checklist: every seed line a check; a healthy deployment passes; one broken fact, one red line."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ops_fixtures import build_stack_db

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.logs import JsonLogger
from goldgate.migrations import MIGRATIONS_DIR, apply_sqlite
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import (
    Facts,
    ImageModels,
    LiveFacts,
    MigrationFacts,
    read_disk_room,
    read_job_facts,
    read_log_facts,
    read_migration_facts,
    read_worker_facts,
)
from goldgate.ops.dr import DrillResult, record, run_local_drill
from goldgate.ops.metrics_report import report_from_sqlite
from goldgate.ops.polling_scan import scan_source, scan_tree
from goldgate.release.ledger import Ledger

pytestmark = pytest.mark.usefixtures("scan_once")  # checklist runs scan service/ once (conftest.py)

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "production-hardening-checklist.md"
IMG_A = "local/worker@sha256:" + "a" * 64
IMG_B = "local/worker@sha256:" + "b" * 64


def _ledger(home: Path) -> tuple:
    ledger = Ledger(home)
    for image in (IMG_A, IMG_B):
        ledger.append("build", image=image, release_id=f"r-{image[-4:]}")
        ledger.append("deploy", stack="staging", image=image)
        ledger.append("golden", stack="staging", image=image, passed=True, suite="full")
        intent = ledger.append("promotion", phase="intent", stack="prod", image=image, gate={"passed": True})
        ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", image=image,
                      prod_image=image, outcome="promoted", smoke_passed=True)
    return tuple(ledger.entries())


def _golden(now: datetime) -> dict:
    checks = [{"name": "sdxl.image0.content_type", "passed": True, "detail": "image/png"},
              {"name": "sdxl.image0.size", "passed": True, "detail": "1234 bytes"}]
    return {"schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "image": IMG_B,
            "passed": True, "finished_at": (now - timedelta(minutes=5)).isoformat(), "failures": [],
            "latency_s": {"mean": 30.0}, "cases": [{"id": "sdxl", "passed": True, "latency_s": 30.0,
                                                     "images": [{"key": "k"}], "checks": checks}]}


def _logs(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "worker.jsonl").open("w") as fh:
        log = JsonLogger("worker", fh, stack="staging", workflow_version="sdxl-txt2img@1.0.0",
                         worker_image_tag=IMG_B)
        log.info("models_loaded", message="6 model files present")
        log.bind(job_id="job-1", trace_id="0" * 32).info("job.completed", status="completed")
    return directory


@pytest.fixture(scope="module")
def healthy(tmp_path_factory) -> Facts:
    tmp = tmp_path_factory.mktemp("healthy")
    now = datetime.now(UTC)
    # Every failed job (each 100th: even, so IMG_A's) ran on the release before: the pinned IMG_B's all completed,
    # which is what the job lines judge.
    db = build_stack_db(tmp / "db.sqlite", jobs=2_000, fail_every=100)
    consistency, docker, roots = read_worker_facts()
    staging, prod = specs.load_local("staging"), specs.load_local("prod")
    return Facts(stack="staging", now=now, specs={"staging": staging.with_image(IMG_B), "prod": prod.with_image(IMG_B)},
                 images={"staging": IMG_B, "prod": IMG_B}, ledger=_ledger(tmp / "home"), golden=_golden(now),
                 golden_path="scripts/golden-tests/reports/latest.json", metrics=report_from_sqlite(db, "staging"),
                 jobs=read_job_facts(db), consistency=consistency, dockerfile_problems=docker,
                 image_models=ImageModels(IMG_B, (), 6), model_roots=roots, logs=read_log_facts(_logs(tmp / "logs")),
                 polling=tuple(scan_tree(Path(checklist.__file__).resolve().parents[2] / "service")),
                 live=LiveFacts(True, "replayed: nothing changed", True, "completed", True, "200 image/png"),
                 drill=run_local_drill("staging", db, tmp / "home").to_dict(), migrations=read_migration_facts(db),
                 room=read_disk_room(db))


def _red(facts: Facts) -> set[str]:
    return {r.id for r in checklist.run_checks(facts) if r.status == checklist.FAIL}


def test_every_seed_line_is_a_check_in_order():
    lines = [c.line for c in checklist.SEED_CHECKS]
    assert len(lines) == 36 and len({c.id for c in checklist.CHECKS}) == len(checklist.CHECKS) == 40
    assert checklist.CHECKS[:36] == checklist.SEED_CHECKS  # goldgate's own lines come after the seed's
    if SEED.is_file():  # the seed lives beside the repository; compare word for word when it is there
        seed = re.findall(r"^- \[ \] (.+)$", SEED.read_text(encoding="utf-8"), re.MULTILINE)
        assert lines == seed


def test_a_healthy_deployment_passes_every_applicable_line(healthy):
    results = checklist.run_checks(healthy)
    assert [r for r in results if r.status == checklist.FAIL] == []
    na = {r.id: r.evidence for r in results if r.status == checklist.NA}
    assert set(na) <= {"rollback_smoke", "d1_retention"}, na  # no rollback here; retention is D1's (cloud) concern
    assert all(r.evidence for r in results)


def test_a_network_volume_in_prods_spec_turns_exactly_its_lines_red(healthy):
    prod = healthy.specs["prod"]
    broken = dataclasses.replace(prod, endpoint=dataclasses.replace(prod.endpoint, network_volume_id="vol-123"))
    # the seed states this fact twice (Workflow/Models and Exit Criteria): both of its lines go red
    assert _red(dataclasses.replace(healthy, specs={**healthy.specs, "prod": broken})) == {
        "no_network_volume", "exit_no_network_volume"}


def test_a_prod_spec_refused_for_its_network_volume_is_red_on_the_same_lines(healthy):
    facts = dataclasses.replace(healthy, specs={"staging": healthy.specs["staging"]}, spec_errors={
        "prod": "stacks/local.yaml: stacks.prod.endpoint.network_volume_id: PROD must not use a network volume"})
    assert _red(facts) == {"no_network_volume", "exit_no_network_volume"}


def test_an_unpinned_prod_image_turns_exactly_one_line_red(healthy):
    facts = dataclasses.replace(healthy, images={**healthy.images, "prod": "local/worker:latest"})
    assert _red(facts) == {"prod_same_digest"}


def test_a_stale_golden_report_turns_exactly_one_line_red(healthy):
    stale = {**healthy.golden, "finished_at": (healthy.now - timedelta(days=3)).isoformat()}
    assert _red(dataclasses.replace(healthy, golden=stale)) == {"golden_report_latest"}


def test_a_missing_model_turns_exactly_one_line_red(healthy):
    from images.worker.manifest import Manifest, check_consistency, load_manifest
    from images.worker.workflows import load_workflows

    worker = Path(checklist.__file__).resolve().parents[2] / "images" / "worker"
    manifest = load_manifest(worker / "models.yaml")
    used = {r.file for w in load_workflows(worker / "workflows").values()
            for r in __import__("images.worker.manifest", fromlist=["x"]).model_references(w)}
    dropped = next(m for m in manifest.models if m.file in used)
    fields = {f.name: getattr(manifest, f.name) for f in dataclasses.fields(manifest)}
    fields["models"] = tuple(m for m in manifest.models if m is not dropped)
    report = check_consistency(Manifest(**fields), load_workflows(worker / "workflows"))
    assert _red(dataclasses.replace(healthy, consistency=report)) == {"models_match"}


@pytest.mark.parametrize(("change", "line"), [
    ({"polling": ("service/x.py:3: RunPod status call inside a loop",)}, "no_polling"),
    ({"live": LiveFacts(False, "CHANGED: job", True, "completed", True, "ok")}, "webhook_idempotent"),
    ({"drill": {"passed": False, "error": "backup refused", "finished_at": "2026-01-01T00:00:00Z"}}, "dr_drill"),
    ({"model_roots": ("/comfyui/models",)}, "model_paths"),
    ({"image_models": ImageModels(IMG_B, ("checkpoints/sd_xl_base_1.0.safetensors: missing",), 6)}, "image_models"),
])
def test_other_single_facts_turn_their_own_line_red(healthy, change, line):
    assert _red(dataclasses.replace(healthy, **change)) == {line}


def test_after_rolling_back_and_returning_the_rollback_line_names_the_release_only_to_can_pin(healthy, tmp_path):
    # A -> B promoted; B rolled back to A; B pinned again on purpose (`--to`). `goldgate rollback` now skips A
    # (a rollback left it), though `goldgate history` lists it as verified: the line says so and how to pin it.
    ledger = Ledger(tmp_path)
    for image in (IMG_A, IMG_B):
        ledger.append("build", image=image, release_id=f"r-{image[-4:]}")
        ledger.append("promotion", phase="outcome", stack="prod", image=image, prod_image=image, outcome="promoted",
                      smoke_passed=True)
    for before, image in ((IMG_B, IMG_A), (IMG_A, IMG_B)):
        ledger.append("rollback", phase="outcome", stack="prod", image=image, before=before, after=image,
                      prod_image=image, pinned=image, outcome="rolled_back", smoke_passed=True)
    facts = dataclasses.replace(healthy, ledger=tuple(ledger.entries()))
    line = next(r for r in checklist.run_checks(facts) if r.id == "rollback_ready")
    assert line.status == checklist.FAIL
    assert f"goldgate rollback --to r-{IMG_A[-4:]}" in line.evidence


def test_a_stale_drill_advises_a_drill_command_that_names_the_stack(healthy):
    # Before: "run `goldgate dr-drill`", which exits 2 (the stack argument is required).
    stale = {**healthy.drill, "finished_at": (healthy.now - timedelta(days=8)).isoformat()}
    line = {r.id: r for r in checklist.run_checks(dataclasses.replace(healthy, drill=stale))}["dr_drill"]
    assert line.status == checklist.FAIL
    assert line.evidence.endswith(f"run `goldgate dr-drill {healthy.stack}`")


def test_a_drill_record_dated_in_the_future_is_not_evidence(healthy):
    future = {**healthy.drill, "finished_at": (healthy.now + timedelta(hours=3)).isoformat()}
    results = {r.id: r for r in checklist.run_checks(dataclasses.replace(healthy, drill=future))}
    assert _red(dataclasses.replace(healthy, drill=future)) == {"dr_drill"}
    assert "in the future" in results["dr_drill"].evidence
    # a clock a couple of minutes apart is not a lie
    skewed = {**healthy.drill, "finished_at": (healthy.now + timedelta(minutes=2)).isoformat()}
    assert _red(dataclasses.replace(healthy, drill=skewed)) == set()


def test_the_service_has_no_polling_code_path_and_the_scan_catches_one():
    assert scan_tree(Path(checklist.__file__).resolve().parents[2] / "service") == []
    loop = ("async def wait(app, rid):\n    while True:\n        s = await app.runpod.status(rid)\n"
            "        if s['status'] == 'COMPLETED':\n            return s\n")
    assert any("inside a loop" in x for x in scan_source(loop, "service/bad.py"))
    cron = "async def scheduled(app):\n    await app.runpod.status('x')\n"
    assert any("scheduled handler" in x for x in scan_source(cron, "service/cron.py"))
    assert "cannot be parsed" in scan_source("def (:\n", "service/broken.py")[0]


def test_an_invalid_log_line_is_reported(tmp_path):
    logs = _logs(tmp_path / "logs")
    with (logs / "service.jsonl").open("w") as fh:
        fh.write(json.dumps({"schema": "goldgate.log.v1", "level": "info"}) + "\nnot json\n")
    facts = read_log_facts(logs)
    assert facts.invalid_count == 2 and "service.jsonl:1" in facts.invalid[0]


def test_every_line_of_a_worker_process_log_is_judged(tmp_path):
    logs = _logs(tmp_path / "logs")
    good = (logs / "worker.jsonl").read_text()
    (logs / "worker-abc.log").write_text(good)
    assert read_log_facts(logs).invalid_count == 0
    # the runpod SDK's own lines, plain and JSON, are not schema v1 (the worker routes them into v1 lines)
    (logs / "worker-abc.log").write_text(good + "INFO   | Started.\n"
                                         + json.dumps({"requestId": "rp-1", "message": "Finished.", "level": "INFO"})
                                         + "\n")
    facts = read_log_facts(logs)
    assert facts.invalid_count == 2 and facts.invalid[0].startswith("worker-abc.log:3: not JSON")


def test_a_host_processs_crash_output_is_not_judged_but_every_other_file_is(tmp_path):
    logs = _logs(tmp_path / "logs")
    (logs / "stackhost.stderr.log").write_text("Traceback (most recent call last):\n  ...\nRuntimeError: boom\n")
    assert read_log_facts(logs).invalid_count == 0
    (logs / "old").mkdir()
    (logs / "old" / "emulator.out").write_text("listening on 127.0.0.1\n")
    facts = read_log_facts(logs)
    assert facts.invalid_count == 1 and facts.invalid[0].startswith("old/emulator.out:1")


def test_cli_on_an_empty_home_fails_with_evidence_and_json(tmp_path, capsys):
    assert main(["checklist", "staging", "--home", str(tmp_path)]) == 1
    text = capsys.readouterr().out
    assert "NOT READY" in text and "[FAIL]" in text
    assert main(["checklist", "staging", "--home", str(tmp_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and len(data["checks"]) == 40
    assert {c["status"] for c in data["checks"]} <= {"pass", "warn", "fail", "n/a"}


def test_a_failed_cloud_drill_after_a_passing_local_drill_leaves_the_local_line_green(tmp_path, capsys):
    home = tmp_path / "home"
    assert run_local_drill("staging", build_stack_db(tmp_path / "db.sqlite", jobs=5), home).passed
    now = datetime.now(UTC).isoformat()
    record(home, DrillResult(stack="staging", target="cloud", passed=False, started_at=now, finished_at=now,
                             error="export failed"))
    main(["checklist", "staging", "--home", str(home), "--offline", "--json"])
    line = next(c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] == "dr_drill")
    assert line["status"] == "pass", line["evidence"]


def test_a_cloud_drill_is_no_evidence_for_the_local_stack(tmp_path, capsys):
    now = datetime.now(UTC).isoformat()
    record(tmp_path, DrillResult(stack="staging", target="cloud", passed=True, started_at=now, finished_at=now))
    main(["checklist", "staging", "--home", str(tmp_path), "--offline", "--json"])
    line = next(c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] == "dr_drill")
    assert line["status"] == "fail" and "goldgate dr-drill staging" in line["evidence"]


def test_cli_refuses_an_unknown_stack_with_one_line(tmp_path, capsys):
    assert main(["checklist", "nope-stack", "--home", str(tmp_path)]) == 1
    assert "no stack named 'nope-stack'" in capsys.readouterr().err


def test_the_scan_follows_a_cron_handler_or_loop_through_the_helpers_that_reach_status():
    # the likely way polling creeps in: a scheduled sweep reusing the one-shot recovery path
    cron = ("async def recover(app, rid):\n    return await app.runpod.status(rid)\n\n"
            "async def settle(app, rid):\n    return await recover(app, rid)\n\n"
            "async def scheduled(app, event):\n    await settle(app, 'x')\n")
    assert any("scheduled handler scheduled()" in x for x in scan_source(cron, "service/cron.py"))
    loop = ("async def recover(app, rid):\n    return await app.runpod.status(rid)\n\n"
            "async def sweep(app, ids):\n    for rid in ids:\n        await recover(app, rid)\n")
    assert any("inside a loop" in x for x in scan_source(loop, "service/sweep.py"))
    gathered = ("async def sweep(app, ids):\n"
                "    return await asyncio.gather(*(app.runpod.status(rid) for rid in ids))\n")
    assert any("inside a loop" in x for x in scan_source(gathered, "service/gather.py"))
    # the one-shot recovery route itself, and a loop that never reaches /status, stay clean
    one_shot = ("async def recover(app, rid):\n    return await app.runpod.status(rid)\n\n"
                "async def route(app, rid):\n    for _ in range(1):\n        log('x')\n    return await recover(app, rid)\n")
    assert scan_source(one_shot, "service/routes.py") == []


def test_the_scan_reads_a_module_in_its_declared_encoding_and_reports_an_undecodable_one(tmp_path):
    service = tmp_path / "service"
    service.mkdir()
    (service / "legacy.py").write_bytes("# -*- coding: latin-1 -*-\n# café\nasync def scheduled(app):\n"
                                        "    await app.runpod.status('x')\n".encode("latin-1"))
    (service / "garbled.py").write_bytes(b"x = '\xff\xfe'\n")
    found = scan_tree(service)
    assert any("service/legacy.py:4: RunPod status call in the scheduled handler" in x for x in found)
    assert any(x.startswith("service/garbled.py:") and "cannot be parsed" in x for x in found)


@pytest.mark.parametrize("finished_at", ["last tuesday", None, "2026-11-28T09:30:00"])
def test_a_drill_record_without_a_readable_aware_finish_time_says_so(healthy, finished_at):
    record = {**healthy.drill, "finished_at": finished_at}
    results = {r.id: r for r in checklist.run_checks(dataclasses.replace(healthy, drill=record))}
    assert results["dr_drill"].status == checklist.FAIL
    assert "finished_at" in results["dr_drill"].evidence and "older than" not in results["dr_drill"].evidence


def test_log_lines_past_the_judging_cap_are_not_reported_as_valid(tmp_path, monkeypatch, healthy):
    from goldgate.ops import checklist_facts

    logs = _logs(tmp_path / "logs")  # two valid lines
    (logs / "zz-late.jsonl").write_text("not json\nnot json either\n")
    monkeypatch.setattr(checklist_facts, "MAX_LOG_LINES", 2)
    facts = read_log_facts(logs)
    assert facts.lines == 2 and facts.unjudged == 2
    evidence = {r.id: r.evidence for r in checklist.run_checks(dataclasses.replace(healthy, logs=facts))}
    assert "2 lines in 2 files valid" in evidence["logs_schema_v1"]
    assert "2 more lines past the first 2 were not judged" in evidence["logs_schema_v1"]


@pytest.mark.parametrize("passed", ["false", "no", 1, [False]])
def test_a_drill_record_whose_passed_is_not_true_is_not_evidence(healthy, passed):
    # Only the drill itself writes `passed: true`; a hand-edited or damaged record saying "false" is truthy.
    record = {**healthy.drill, "passed": passed}
    results = {r.id: r for r in checklist.run_checks(dataclasses.replace(healthy, drill=record))}
    assert results["dr_drill"].status == checklist.FAIL


def test_a_golden_report_whose_passed_is_a_string_is_not_green(healthy):
    said_false = {**healthy.golden, "passed": "false"}
    assert "golden_all_pass" in _red(dataclasses.replace(healthy, golden=said_false))
    cases = [{**c, "passed": "false"} for c in healthy.golden["cases"]]
    assert "golden_all_pass" in _red(dataclasses.replace(healthy, golden={**healthy.golden, "cases": cases}))


def test_a_log_line_nested_too_deep_to_parse_is_an_invalid_line_not_a_crash(tmp_path):
    logs = _logs(tmp_path / "logs")
    with (logs / "service.jsonl").open("w") as fh:
        fh.write("[" * 100_000 + "\n" + '{"a":' * 100_000 + "\n")
    facts = read_log_facts(logs)
    assert facts.invalid_count == 2 and "service.jsonl:1" in facts.invalid[0]


def test_an_oversized_log_line_is_judged_invalid_without_being_held_in_memory(tmp_path):
    import tracemalloc

    logs = _logs(tmp_path / "logs")
    with (logs / "service.jsonl").open("w") as fh:
        fh.write('{"message": "' + "x" * (48 * 1024 * 1024) + '"}\n')
    tracemalloc.start()
    try:
        facts = read_log_facts(logs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert facts.invalid_count == 1 and "service.jsonl:1" in facts.invalid[0] and "longer than" in facts.invalid[0]
    assert facts.lines == 3  # the worker's two lines and the oversized one: the others were still judged
    assert peak < 16 * 1024 * 1024, peak


def test_a_model_counts_as_baked_only_by_a_layer_that_writes_it(tmp_path: Path) -> None:
    """The worker bakes each model with a RUN of fetch_model.py; a RUN that merely names the path, or a fetch of
    another file, bakes nothing."""
    from goldgate.ops.checklist_facts import dockerfile_problems
    from images.worker.manifest import load_manifest

    worker = Path(__file__).resolve().parents[2] / "images" / "worker"
    manifest = load_manifest(worker / "models.yaml")
    shipped = (worker / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile_problems(worker / "Dockerfile", manifest) == ()
    first = f"/comfyui/models/{manifest.models[0].relative_path}"
    line = next(x for x in shipped.splitlines() if x.rstrip().endswith(first))
    for replacement in (f"RUN echo {first}", line.replace(first, "/comfyui/models/elsewhere.safetensors")):
        edited = tmp_path / "Dockerfile"
        edited.write_text(shipped.replace(line, replacement), encoding="utf-8")
        assert dockerfile_problems(edited, manifest) == (
            f"the Dockerfile does not bake {manifest.models[0].relative_path} into {first}",)


# -- goldgate's own lines: the database's upkeep -------------------------------------------------

def _line(capsys, home: Path, check: str) -> dict:
    main(["checklist", "staging", "--home", str(home), "--offline", "--json"])
    return next(c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] == check)


def test_a_database_an_older_goldgate_migrated_turns_the_migrations_line_red_naming_what_is_missing(tmp_path, capsys):
    home = tmp_path / "home"
    db = LocalPlatform(home).db_path("staging")
    db.parent.mkdir(parents=True)
    older = tmp_path / "older-migrations"
    older.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql"))[:2]:  # the checkout before migration 0003
        (older / path.name).write_text(path.read_text())
    apply_sqlite(db, older)
    line = _line(capsys, home, "db_migrated")
    assert line["status"] == "fail", line
    assert "migrations not applied: 0003_job_metrics_images.sql" in line["evidence"]
    assert "goldgate up staging" in line["evidence"]
    apply_sqlite(db)
    line = _line(capsys, home, "db_migrated")
    newest = max(MIGRATIONS_DIR.glob("*.sql")).name  # later checkouts add migrations after 0003
    assert line["status"] == "pass" and f"up to {newest}" in line["evidence"], line


def test_a_database_a_newer_goldgate_migrated_is_not_judged_by_this_checkout(healthy):
    newer = dataclasses.replace(healthy, migrations=MigrationFacts(newest="0003_job_metrics_images.sql",
                                                                   unknown=("0004_later.sql",)))
    assert _red(newer) == {"db_migrated"}
    result = next(r for r in checklist.run_checks(newer) if r.id == "db_migrated")
    assert "0004_later.sql" in result.evidence and "update this checkout" in result.evidence


def test_a_missing_database_is_red_on_the_migrations_line(tmp_path, capsys):
    line = _line(capsys, tmp_path, "db_migrated")
    assert line["status"] == "fail" and "no database at" in line["evidence"], line


def test_retention_on_a_local_stack_is_informational_and_names_the_last_prune(tmp_path, capsys):
    home = tmp_path / "home"
    # Jobs of yesterday: the fixture's default start (2026-11-01) fell out of --keep-days 30 on 2026-12-01.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    build_stack_db(LocalPlatform(home).db_path("staging"), jobs=5, start=yesterday)
    line = _line(capsys, home, "d1_retention")
    assert line["status"] == "n/a" and "no `goldgate prune staging` recorded" in line["evidence"], line
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30", "--dry-run"]) == 0
    capsys.readouterr()
    line = _line(capsys, home, "d1_retention")
    assert "no `goldgate prune staging` recorded" in line["evidence"], line  # a dry run deleted nothing
    assert main(["prune", "staging", "--home", str(home), "--keep-days", "30"]) == 0
    capsys.readouterr()
    line = _line(capsys, home, "d1_retention")
    assert line["status"] == "n/a" and "the last `goldgate prune` (--keep-days 30) deleted 0 jobs 0.0 days ago" \
        in line["evidence"], line
