"""A local stack's `database.retention` runs on the cron the cloud's Cron Trigger would: the same stack file is
accepted locally (it was refused: "a Cloudflare Cron Trigger runs it, so it is for cloud stacks"), its cron is read as
Cloudflare reads it (UTC, weekdays 1-7 from Sunday, L, W and #), and one the host could not place in time is refused
when the stack file is loaded, naming the field."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError
from goldgate.local.retention_cron import CronSchedule, RetentionCron, RetentionOutcome

MONDAY = datetime(2026, 11, 30, 6, 40, tzinfo=UTC)  # a Monday, 06:40 UTC


def _local_file(tmp_path: Path, retention: object) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["database"]["retention"] = retention
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_local_stack_with_retention_loads_with_its_schedule(tmp_path: Path) -> None:
    path = _local_file(tmp_path, {"keep_days": 30, "metrics_keep_days": 365, "cron": "30 3 * * *"})
    spec = specs.load_local("staging", path)
    assert spec.database.retention == specs.RetentionSpec(keep_days=30, cron="30 3 * * *", metrics_keep_days=365)


@pytest.mark.parametrize(("cron", "said"), [
    # spec.py's own checks, as for a cloud stack
    ("30 3 * * 0", "the day of week field '0' names 0, outside 1-7"),
    ("0 30 3 * * *", "has 6 field(s), not 5"),
    # characters Cloudflare takes in the field, in a form it does not
    ("0 3 1,L * *", "retention.cron: '0 3 1,L * *': the day of month field names 'L'"),
    ("0 3 LL * *", "the day of month field 'LL' is not L, LW, L-n or L-nW"),
    ("0 3 * * MON#6", "asks for a '6'th weekday, not 1-5"),
    ("0 3 31 2 *", "names no date that exists"),
])
def test_a_bad_cron_on_a_local_stack_is_refused_when_the_stack_file_is_loaded(
        tmp_path: Path, cron: str, said: str) -> None:
    with pytest.raises(SpecError) as err:
        specs.load_local("staging", _local_file(tmp_path, {"keep_days": 30, "cron": cron}))
    assert "stacks.staging.database.retention.cron" in str(err.value)
    assert said in str(err.value)


@pytest.mark.parametrize(("cron", "after", "then"), [
    ("30 3 * * *", MONDAY, ["2026-12-01 03:30", "2026-12-02 03:30"]),
    # Cloudflare's weekdays: MON-FRI is 2-6, and 1 is Sunday
    ("*/30 * * * MON-FRI", datetime(2026, 12, 4, 23, 40, tzinfo=UTC), ["2026-12-07 00:00", "2026-12-07 00:30"]),
    ("10 7 * * 2-6", datetime(2026, 12, 4, 8, 0, tzinfo=UTC), ["2026-12-07 07:10", "2026-12-08 07:10"]),
    ("0 17 * * 1", MONDAY, ["2026-12-06 17:00", "2026-12-13 17:00"]),
    ("0 18 * * 6L", MONDAY, ["2026-12-25 18:00", "2027-01-29 18:00"]),   # the month's last Friday
    ("0 18 * * friL", MONDAY, ["2026-12-25 18:00", "2027-01-29 18:00"]),
    ("59 23 LW * *", datetime(2026, 10, 1, tzinfo=UTC), ["2026-10-30 23:59", "2026-11-30 23:59"]),  # 31 Oct: Sat
    ("0 9 L * *", datetime(2027, 2, 1, tzinfo=UTC), ["2027-02-28 09:00", "2027-03-31 09:00"]),
    ("0 0 L-3 * *", MONDAY, ["2026-12-28 00:00", "2027-01-28 00:00"]),
    ("0 10 * * MON#2", MONDAY, ["2026-12-14 10:00", "2027-01-11 10:00"]),
    ("0 0 1W * *", datetime(2026, 7, 15, tzinfo=UTC), ["2026-08-03 00:00", "2026-09-01 00:00"]),  # 1 Aug: Sat
    ("0 22-2/2 * * *", MONDAY, ["2026-11-30 22:00", "2026-12-01 00:00"]),  # a range round midnight
    ("0 3 1 jan,Jul *", MONDAY, ["2027-01-01 03:00", "2027-07-01 03:00"]),
    # both day fields: either one, as Cloudflare's parser reads them (15 Dec is a Tuesday)
    ("0 0 15 * 7", datetime(2026, 12, 13, tzinfo=UTC), ["2026-12-15 00:00", "2026-12-19 00:00"]),
])
def test_the_schedule_fires_when_cloudflare_would_in_utc(cron: str, after: datetime, then: list[str]) -> None:
    schedule = CronSchedule.parse(cron)
    times, at = [], after
    for _ in then:
        at = schedule.next_after(at)
        times.append(at.strftime("%Y-%m-%d %H:%M"))
    assert times == then


def _cron(last_run: datetime | None, cron: str = "30 3 * * *") -> RetentionCron:
    return RetentionCron(CronSchedule.parse(cron), lambda _: RetentionOutcome("pruned"), lambda _: None,
                         threading.Event(), last_run=lambda: last_run)


def test_a_scheduled_time_missed_while_the_stack_was_down_is_run_once_when_it_starts() -> None:
    today = datetime(2026, 11, 30, 3, 30, tzinfo=UTC)
    # down since Friday: the three missed runs are one, the latest
    assert _cron(datetime(2026, 11, 27, 3, 31, tzinfo=UTC)).missed(MONDAY) == today
    assert _cron(None).missed(MONDAY) == today  # never pruned
    # pruned since the last scheduled time (by the host, or by `goldgate prune`): nothing is missed
    assert _cron(datetime(2026, 11, 30, 4, 0, tzinfo=UTC)).missed(MONDAY) is None


def test_a_failing_run_is_reported_and_the_next_scheduled_time_runs_again() -> None:
    clock = [datetime(2026, 11, 30, 3, 0, tzinfo=UTC)]
    stopping = threading.Event()
    ran: list[datetime] = []
    told: list[RetentionOutcome] = []

    def now() -> datetime:  # each look at the clock is ten minutes on: a day goes by in a few reads
        clock[0] += timedelta(minutes=10)
        return clock[0]

    def run(scheduled_for: datetime) -> RetentionOutcome:
        ran.append(scheduled_for)
        if len(ran) == 1:
            raise RuntimeError("database is locked")
        stopping.set()
        return RetentionOutcome("pruned", status="complete")

    cron = RetentionCron(CronSchedule.parse("30 3 * * *"), run, told.append, stopping,
                         last_run=lambda: clock[0], clock=now, poll_s=0.001)
    worker = threading.Thread(target=cron.loop)
    worker.start()
    worker.join(60)
    assert not worker.is_alive()
    assert ran == [datetime(2026, 11, 30, 3, 30, tzinfo=UTC), datetime(2026, 12, 1, 3, 30, tzinfo=UTC)]
    assert [(o.kind, o.reason) for o in told] == [("failed", "prune_failed"), ("pruned", None)]
    assert "database is locked" in (told[0].message or "") and "next scheduled run tries again" in told[0].message


def test_a_clock_set_back_while_the_host_waits_moves_the_next_run_with_it() -> None:
    """The host started while the clock read a year ahead (a wrong RTC), then NTP set it right: the next run is the
    schedule's next time by the clock as it reads now, not a year on."""
    ahead, right = datetime(2027, 11, 30, 12, 0, tzinfo=UTC), datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    reads = 0
    stopping = threading.Event()
    ran: list[datetime] = []

    def now() -> datetime:  # the start's two reads (missed run, next time) are the wrong clock; then 10 min a read
        nonlocal reads
        reads += 1
        return ahead if reads <= 2 else right + timedelta(minutes=10 * (reads - 2))

    def run(scheduled_for: datetime) -> RetentionOutcome:
        ran.append(scheduled_for)
        stopping.set()
        return RetentionOutcome("pruned", status="complete")

    cron = RetentionCron(CronSchedule.parse("30 3 * * *"), run, lambda _o: None, stopping,
                         last_run=lambda: ahead, clock=now, poll_s=0.001)
    worker = threading.Thread(target=cron.loop)
    worker.start()
    worker.join(60)
    stopping.set()
    assert ran == [datetime(2026, 12, 1, 3, 30, tzinfo=UTC)]
