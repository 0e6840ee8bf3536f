"""Review 14 (m4): checklist lines that a mutation showed no test held red when their fact is missing."""

from __future__ import annotations

from datetime import UTC, datetime

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, JobFacts

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _facts(**more: object) -> Facts:
    return Facts(stack="staging", now=NOW, **more)


def test_a_stack_whose_webhooks_never_completed_a_job_fails_the_webhook_line():
    # Jobs created, FAILED webhooks applied, but no COMPLETED one ever: the webhook route is not shown to work for
    # the outcome that matters.
    none = checklist.webhook_receives(_facts(jobs=JobFacts(total=5, applied_webhooks={"FAILED": 2})))
    some = checklist.webhook_receives(_facts(jobs=JobFacts(total=5, applied_webhooks={"COMPLETED": 3, "FAILED": 2})))
    assert none == (checklist.FAIL, "no COMPLETED webhook was ever applied")
    assert some[0] == checklist.PASS and "3 COMPLETED, 2 FAILED" in some[1]


def test_completed_jobs_no_applied_delivery_completed_fail_the_status_line():
    # "Status endpoint ตอบ completed เมื่อ webhook อัปเดต": a job shown completed that no applied COMPLETED delivery
    # (a webhook or a recovery) completed was not completed by the webhook flow.
    done = {"completed": 5}
    stray = checklist.status_after_webhook(_facts(jobs=JobFacts(total=5, by_status=done, completed_without_delivery=2),
                                                  live_reason="no live stack"))
    clean = checklist.status_after_webhook(_facts(jobs=JobFacts(total=5, by_status=done), live_reason="no live stack"))
    assert stray == (checklist.FAIL, "2 completed job(s) have no applied COMPLETED delivery")
    assert clean[0] == checklist.PASS


def _golden(*checks: dict) -> dict:
    return {"passed": True, "cases": [{"id": "sdxl", "passed": True, "checks": list(checks)}]}


def test_without_a_live_stack_or_a_golden_download_the_result_line_is_red_not_green():
    # Nothing showed a result coming back through /api/result/:key: no probe ran, and the golden report holds no
    # download (its cases checked nothing of the results).
    nothing = checklist.result_via_api(_facts(live_reason="the stack is down", golden=_golden()))
    shown = checklist.result_via_api(_facts(live_reason="the stack is down", golden=_golden(
        {"name": "sdxl.image0.content_type", "passed": True, "detail": "image/png"})))
    assert nothing[0] == checklist.FAIL and "the stack is down" in nothing[1], nothing
    assert shown[0] == checklist.PASS, shown


def test_a_golden_result_of_the_wrong_size_fails_the_size_and_content_type_line():
    bad = {"name": "sdxl.image0.size", "passed": False, "detail": "0 bytes"}
    ok = {"name": "sdxl.image0.content_type", "passed": True, "detail": "image/png"}
    verdict = checklist.size_and_type_checked(_facts(jobs=JobFacts(total=1, by_status={"completed": 1}),
                                                     golden=_golden(bad, ok)))
    assert verdict == (checklist.FAIL, "sdxl.image0.size: 0 bytes")


def test_a_golden_case_that_made_no_image_fails_the_every_job_has_images_line():
    jobs = JobFacts(total=3, by_status={"completed": 3})
    empty = {"cases": [{"id": "sdxl", "passed": False, "images": []}, {"id": "flux", "passed": True, "images": [{}]}]}
    verdict = checklist.all_jobs_have_images(_facts(jobs=jobs, golden=empty))
    assert verdict[0] == checklist.FAIL and "golden cases without images: sdxl" in verdict[1], verdict
    full = {"cases": [{"id": "sdxl", "passed": True, "images": [{}]}]}
    assert checklist.all_jobs_have_images(_facts(jobs=jobs, golden=full))[0] == checklist.PASS


def test_a_rollback_whose_smoke_test_failed_fails_the_rollback_smoke_line(tmp_path):
    from goldgate.release.ledger import Ledger

    ledger = Ledger(tmp_path)
    image = "local/worker@sha256:" + "a" * 64
    intent = ledger.append("rollback", phase="intent", stack="prod", image=image)
    ledger.append("rollback", phase="outcome", intent_seq=intent.seq, stack="prod", image=image, prod_image=image,
                  outcome="rolled_back", smoke_passed=False, error="smoke case sdxl: no image")
    verdict = checklist.rollback_smoke(_facts(ledger=tuple(ledger.entries())))
    assert verdict[0] == checklist.FAIL and "smoke case sdxl: no image" in verdict[1], verdict


def test_a_preflight_that_checked_no_model_file_does_not_confirm_the_image_has_its_models():
    from goldgate.ops.checklist_facts import ImageModels

    image = "local/worker@sha256:" + "b" * 64
    nothing = checklist.image_has_models(_facts(image_models=ImageModels(image, (), 0)))
    six = checklist.image_has_models(_facts(image_models=ImageModels(image, (), 6)))
    assert nothing[0] == checklist.FAIL and six[0] == checklist.PASS


def test_no_log_line_at_all_fails_the_logging_schema_line():
    from goldgate.ops.checklist_facts import LogFacts

    verdict = checklist.logs_schema(_facts(logs=LogFacts(files=2, lines=0)))
    assert verdict == (checklist.FAIL, "no log lines found under the stack's logs dir")


def test_job_lines_without_a_trace_id_fail_the_trace_fields_line():
    from goldgate.ops.checklist_facts import LogFacts

    verdict = checklist.trace_fields(_facts(logs=LogFacts(files=1, lines=9, job_ids=2, jobs_missing_trace=("job-1",))))
    assert verdict == (checklist.FAIL, "lines without trace_id for jobs job-1")


def test_completed_jobs_none_with_runpod_durations_fail_the_durations_line():
    none = checklist.durations_recorded(_facts(jobs=JobFacts(metrics_completed=3, metrics_with_durations=0)))
    one = checklist.durations_recorded(_facts(jobs=JobFacts(metrics_completed=3, metrics_with_durations=1)))
    assert none[0] == checklist.FAIL and one[0] == checklist.PASS


def test_a_check_that_breaks_on_its_facts_is_a_red_line_not_a_green_one():
    def broken(_: Facts) -> tuple[str, str]:
        raise KeyError("e2e_ms")

    [result] = checklist.run_checks(_facts(), (checklist.Check("x", "s", "a line", broken),))
    assert result.status == checklist.FAIL and "KeyError" in result.evidence
    assert checklist.to_json("staging", [result])["passed"] is False


IMG_A = "local/worker@sha256:" + "a" * 64
IMG_B = "local/worker@sha256:" + "b" * 64


def test_staging_running_an_image_the_pipeline_never_deployed_fails_though_another_was(tmp_path):
    from goldgate.release.ledger import Ledger

    ledger = Ledger(tmp_path)
    ledger.append("deploy", stack="staging", image=IMG_A)
    verdict = checklist.staging_image_via_pipeline(_facts(images={"staging": IMG_B}, ledger=tuple(ledger.entries())))
    assert verdict[0] == checklist.FAIL and "records no deploy of it" in verdict[1], verdict


def test_a_promotion_of_an_image_staging_never_passed_golden_with_fails_the_line(tmp_path):
    from goldgate.release.ledger import Ledger

    ledger = Ledger(tmp_path)
    ledger.append("golden", stack="staging", image=IMG_A, passed=True, suite="full")
    intent = ledger.append("promotion", phase="intent", stack="prod", image=IMG_B, gate={"passed": True})
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", image=IMG_B, prod_image=IMG_B,
                  outcome="promoted", smoke_passed=True)
    verdict = checklist.golden_before_promote(_facts(ledger=tuple(ledger.entries())))
    assert verdict[0] == checklist.FAIL and IMG_B in verdict[1], verdict


def test_a_promotion_left_interrupted_after_the_last_complete_one_fails_the_pipeline_line(tmp_path):
    from goldgate.release.ledger import Ledger

    ledger = Ledger(tmp_path)
    ledger.append("build", image=IMG_B, release_id="r-b")
    ledger.append("deploy", stack="staging", image=IMG_B)
    ledger.append("golden", stack="staging", image=IMG_B, passed=True, suite="full")
    intent = ledger.append("promotion", phase="intent", stack="prod", image=IMG_B, gate={"passed": True})
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", image=IMG_B, prod_image=IMG_B,
                  outcome="promoted", smoke_passed=True)
    assert checklist.pipeline_complete(_facts(ledger=tuple(ledger.entries())))[0] == checklist.PASS
    ledger.append("promotion", phase="intent", stack="prod", image=IMG_A, gate={"passed": True})  # then killed
    verdict = checklist.pipeline_complete(_facts(ledger=tuple(ledger.entries())))
    assert verdict[0] == checklist.FAIL and "interrupted promotion" in verdict[1], verdict


def test_one_golden_case_over_the_case_latency_limit_fails_the_latency_line_whatever_the_mean():
    from goldgate import spec as specs

    staging = specs.load_local("staging")
    limit = staging.thresholds.golden_case_latency_s
    golden = {"image": IMG_B, "passed": True, "latency_s": {"mean": 1.0},
              "cases": [{"id": "slow", "latency_s": limit + 1}, {"id": "fast", "latency_s": 0.5}]}
    verdict = checklist.golden_latency(_facts(specs={"staging": staging}, images={"staging": IMG_B}, golden=golden))
    assert verdict[0] == checklist.FAIL and "cases over " in verdict[1] and verdict[1].endswith(": slow"), verdict
