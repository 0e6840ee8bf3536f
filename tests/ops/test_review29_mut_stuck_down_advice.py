"""Review 29 (mut): `goldgate stuck` on a local stack that is down. A job past its deadline is advised to bring the
stack up first, as a younger one is (recover asks the stack's API, which does not answer while it is down); the text
report says no job may simply be running."""

from __future__ import annotations

from test_review28_mut2_stuck_host_start import NOW, STAGING, _db

from goldgate.ops import stuck


def test_a_job_past_its_deadline_on_a_stack_that_is_down_says_to_bring_it_up_first(tmp_path):
    db = _db(tmp_path, NOW - 3 * 3600, NOW - 60)   # the ttl is an hour: the first is past its deadline
    report = stuck.list_local(STAGING, db, 10, now_s=NOW, stack_down=True)
    assert (report.stuck, report.younger, report.stack_down) == (2, 0, True), report
    old, young = report.jobs
    assert old.past_deadline and not young.past_deadline
    for job in (old, young):
        assert job.before_host_start, job
        assert (job.advice or "").startswith("the stack is down: the local RunPod it was sent to ended with the "
                                             "stack's host, so no webhook will come; `goldgate up staging` first"), job
    assert "past its deadline: no RunPod job can settle it any more" in old.advice
    assert "recover settles it then" in young.advice and "the RunPod of the new host" in young.advice
    text = stuck.render_text(report.to_dict())
    assert "queued or in progress while the stack is down" in text and "may simply be running" not in text, text
