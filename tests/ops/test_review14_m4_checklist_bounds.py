"""Review 14 (m4): the checklist's limits are inclusive where the seed says "<=" and "not above"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, JobFacts

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _facts(**more: object) -> Facts:
    return Facts(stack="staging", now=NOW, **more)


def test_a_mean_latency_of_exactly_six_minutes_meets_the_exit_criterion_and_a_millisecond_more_does_not():
    # The seed: "Latency เฉลี่ย <= 6 นาที".
    at = checklist.mean_latency(_facts(jobs=JobFacts(mean_e2e_ms=360_000.0)))
    over = checklist.mean_latency(_facts(jobs=JobFacts(mean_e2e_ms=360_001.0)))
    assert at[0] == checklist.PASS, at
    assert over[0] == checklist.FAIL and "exceeds 6 minutes" in over[1], over


def _metrics(errors: int, count: int) -> dict:
    group = {"count": count, "error_rate": errors / count}
    return {"overall": group, "by_worker_image_tag": []}


def test_an_error_rate_at_the_threshold_is_not_above_it_and_one_more_error_is():
    # "ไม่มี error rate เกินเกณฑ์": no error rate *above* the threshold (0.05 without a stack spec, as the gate).
    at = checklist.error_rate_ok(_facts(metrics=_metrics(5, 100)))
    over = checklist.error_rate_ok(_facts(metrics=_metrics(6, 100)))
    assert at[0] == checklist.PASS, at
    assert over[0] == checklist.FAIL and "exceeds 5.00%" in over[1], over


def _pruned(finished_at: datetime) -> dict:
    return {"format": "goldgate.prune.v1", "target": "cloud", "dry_run": False, "keep_days": 30,
            "finished_at": finished_at.isoformat(), "deleted": {"jobs": 12}}


def test_a_prune_record_from_the_future_is_no_evidence_that_d1_is_pruned():
    # As a drill record or a golden report dated ahead of this clock (beyond the allowed skew): not evidence.
    recent = checklist.d1_retention(_facts(target="cloud", prune=_pruned(NOW - timedelta(days=1))))
    ahead = checklist.d1_retention(_facts(target="cloud", prune=_pruned(NOW + timedelta(days=1))))
    stale = checklist.d1_retention(_facts(target="cloud", prune=_pruned(NOW - timedelta(days=32))))
    assert recent[0] == checklist.PASS, recent
    assert ahead[0] == checklist.FAIL, ahead
    assert stale[0] == checklist.FAIL, stale


def test_prods_cloud_drill_is_late_past_25_hours_not_an_hour_later():
    # docs/D1_DISASTER_RECOVERY.md: the daily drill is D1's backup, RPO 24 h, one hour's grace: 25 h.
    from goldgate import spec as specs

    prod = specs.load_local("prod")

    def line(hours: float) -> tuple[str, str]:
        drill = {"passed": True, "finished_at": (NOW - timedelta(hours=hours)).isoformat(), "rto_s": 2.0}
        return checklist.dr_drill(Facts(stack=prod.name, now=NOW, target="cloud", specs={"prod": prod}, drill=drill))

    assert line(24.5)[0] == checklist.PASS, line(24.5)
    late = line(25.5)
    assert late[0] == checklist.FAIL and "more than the 25 h" in late[1], late
