"""The local stand-in for the Cron Trigger that runs a stack's `database.retention` in the cloud.

The stack host runs it: on the stack's `cron` (UTC, read as Cloudflare reads it), it prunes the stack's SQLite as
`goldgate prune <stack> --keep-days N [--metrics-keep-days M]` would, with that command's guards (the database must
be the stack's, and a clock that looks stepped ahead deletes nothing: a laptop's clock is not Cloudflare's), and
records the prune where `goldgate prune` does. One run missed while the stack was down is run when the host starts.
"""

from __future__ import annotations

import calendar
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from goldgate.errors import GoldgateError, describe
from goldgate.local.state import StackDir
from goldgate.ops import retention
from goldgate.release.lock import HolderLock, LockHeld
from goldgate.spec import RetentionSpec, StackSpec

# -- the schedule -------------------------------------------------------------------------------------------------

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # Cloudflare's 1-7, 1 for Sunday
# How far a schedule is searched for its next (or last) time: past every leap-year cycle a date rule can need.
_SEARCH_DAYS = 8 * 366


class CronError(ValueError):
    """A cron expression the local schedule cannot read as Cloudflare does."""


def _weekday(day: date) -> int:
    """Cloudflare's number for `day`'s weekday: 1 Sunday ... 7 Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _days_in(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _nearest_weekday(day: date, target: int) -> bool:
    """`nW`: the weekday nearest the `target`th of the month, never in another month (Quartz's rule)."""
    last = _days_in(day)
    if target > last:
        return False
    wanted = day.replace(day=target)
    weekday = _weekday(wanted)
    if weekday == 7:  # Saturday: the Friday before, or the Monday after when the 1st is a Saturday
        wanted += timedelta(days=2 if target == 1 else -1)
    elif weekday == 1:  # Sunday: the Monday after, or the Friday before when it is the month's last day
        wanted += timedelta(days=-2 if target == last else 1)
    return day == wanted


def _value(text: str, name: str, lo: int, hi: int, names: tuple[str, ...]) -> int:
    if text in names:
        return names.index(text) + 1
    if not text.isdecimal() or not lo <= int(text) <= hi:
        raise CronError(f"the {name} field names {text!r}, not a value {lo}-{hi}")
    return int(text)


def _values(part: str, name: str, lo: int, hi: int, names: tuple[str, ...] = ()) -> frozenset[int]:
    """A list of values, ranges and steps; a range may wrap round (FRI-SUN, 22-2), as Quartz's and Cloudflare's."""
    out: set[int] = set()
    for item in part.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdecimal() or not 1 <= int(step_text) <= hi - lo:
                raise CronError(f"the {name} field's step {step_text!r} is not 1-{hi - lo}")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, name, lo, hi, names), _value(last, name, lo, hi, names)
        else:
            start = _value(base, name, lo, hi, names)
            end = hi if slash else start
        run = list(range(start, end + 1)) if start <= end else [*range(start, hi + 1), *range(lo, end + 1)]
        out.update(run[::step])
    return frozenset(out)


def _day_of_month(part: str) -> Callable[[date], bool]:
    """The day-of-month field: values, or one of L, L-n, LW, L-nW, nW (Cloudflare's Quartz forms)."""
    if part.startswith("L"):
        rest, weekday = (part[1:-1], True) if part.endswith("W") else (part[1:], False)
        if rest and not (rest.startswith("-") and rest[1:].isdecimal() and 1 <= int(rest[1:]) <= 30):
            raise CronError(f"the day of month field {part!r} is not L, LW, L-n or L-nW (n 1-30)")
        offset = int(rest[1:]) if rest else 0
        if weekday:
            return lambda day: _days_in(day) - offset >= 1 and _nearest_weekday(day, _days_in(day) - offset)
        return lambda day: day.day == _days_in(day) - offset
    if part.endswith("W"):
        target = _value(part[:-1], "day of month", 1, 31, ())
        return lambda day: _nearest_weekday(day, target)
    days = _values(part, "day of month", 1, 31)
    return lambda day: day.day in days


def _day_of_week(part: str) -> Callable[[date], bool]:
    """The day-of-week field: values (1-7 or SUN-SAT), L (Saturday), nL (the month's last), n#k (its k-th)."""
    if part == "L":
        return lambda day: _weekday(day) == 7
    if part.endswith("L"):
        weekday = _value(part[:-1], "day of week", 1, 7, _WEEKDAYS)
        return lambda day: _weekday(day) == weekday and day.day + 7 > _days_in(day)
    if "#" in part:
        name, _, nth = part.partition("#")
        weekday = _value(name, "day of week", 1, 7, _WEEKDAYS)
        if not nth.isdecimal() or not 1 <= int(nth) <= 5:
            raise CronError(f"the day of week field {part!r} asks for a {nth!r}th weekday, not 1-5")
        return lambda day: _weekday(day) == weekday and (day.day - 1) // 7 + 1 == int(nth)
    days = _values(part, "day of week", 1, 7, _WEEKDAYS)
    return lambda day: _weekday(day) in days


@dataclass(frozen=True)
class CronSchedule:
    """When a five-field Cloudflare cron expression fires, in UTC, to the minute."""

    expression: str
    minutes: frozenset[int] = field(repr=False)
    hours: frozenset[int] = field(repr=False)
    months: frozenset[int] = field(repr=False)
    day: Callable[[date], bool] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = expression.upper().split()
        if len(parts) != 5:
            raise CronError(f"{expression!r} has {len(parts)} field(s), not 5")
        try:
            minute, hour, dom, month, dow = parts
            minutes, hours = _values(minute, "minute", 0, 59), _values(hour, "hour", 0, 23)
            months = _values(month, "month", 1, 12, _MONTHS)
            by_month, by_week = _day_of_month(dom), _day_of_week(dow)
        except CronError as exc:
            raise CronError(f"{expression!r}: {exc}") from None
        # Both day fields given: either matches, as Cloudflare's parser (and crontab) read them.
        if dom == "*" and dow == "*":
            def day(d: date) -> bool:
                return True
        elif dow == "*":
            day = by_month
        elif dom == "*":
            day = by_week
        else:
            def day(d: date) -> bool:
                return by_month(d) or by_week(d)
        schedule = cls(" ".join(expression.split()), minutes, hours, months, day)
        if schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise CronError(f"{expression!r} names no date that exists (e.g. the 31st of a 30-day month)")
        return schedule

    def _runs_on(self, day: date) -> bool:
        return day.month in self.months and self.day(day)

    def next_after(self, when: datetime) -> datetime | None:
        """The first time strictly after `when` the schedule fires (None: it never does)."""
        start = when.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for offset in range(_SEARCH_DAYS):
            day = start.date() + timedelta(days=offset)
            if not self._runs_on(day):
                continue
            after = (start.hour, start.minute) if offset == 0 else (0, 0)
            times = [(h, m) for h in sorted(self.hours) for m in sorted(self.minutes) if (h, m) >= after]
            if times:
                return datetime(day.year, day.month, day.day, *times[0], tzinfo=UTC)
        return None

    def last_at_or_before(self, when: datetime) -> datetime | None:
        """The latest time up to `when` the schedule fired (None: not within the search)."""
        end = when.astimezone(UTC).replace(second=0, microsecond=0)
        for offset in range(_SEARCH_DAYS):
            day = end.date() - timedelta(days=offset)
            if not self._runs_on(day):
                continue
            before = (end.hour, end.minute) if offset == 0 else (23, 59)
            times = [(h, m) for h in self.hours for m in self.minutes if (h, m) <= before]
            if times:
                return datetime(day.year, day.month, day.day, *max(times), tzinfo=UTC)
        return None


# -- one run --------------------------------------------------------------------------------------------------------

PRUNE_LOCK = "prune.lock"


@contextlib.contextmanager
def pruning(stack_dir: StackDir, holder: str) -> Iterator[str | None]:
    """Held by whatever prunes or exports the stack's database while it does, without waiting: yields None when
    taken, else who holds it. Two prunes at once each counted part of what went; a prune during a drill's export
    made the drill's backup miss rows the stack's history had a moment before. A flock like the release path's
    (goldgate.release.lock): its holder's death releases it, and a FIFO or directory in its place is refused by
    name."""
    lock = HolderLock(stack_dir.root / PRUNE_LOCK, holder, "prune", "the prune lock")
    try:
        lock.__enter__()
    except LockHeld as held:
        yield held.holder
        return
    try:
        yield None
    finally:
        lock.__exit__(None, None, None)


class Stop(Protocol):
    def is_set(self) -> bool: ...


class RetentionStopped(Exception):
    """The host is stopping: the run ends after the statement in hand."""


class _StoppableSql:
    """retention.Sql over the stack's SQLite that ends the run between two statements once the host stops. Every
    retention statement stands alone, so stopping between any two leaves a consistent database."""

    def __init__(self, conn: sqlite3.Connection, stop: Stop) -> None:
        self.conn, self.stop = conn, stop

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self.stop.is_set():
            raise RetentionStopped
        cur = self.conn.execute(sql, tuple(params))
        cols = [c[0] for c in cur.description or ()]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


@dataclass(frozen=True)
class RetentionOutcome:
    """What one scheduled run did, for the host's log line: `kind` is pruned, skipped or failed."""

    kind: str
    status: str | None = None       # pruned: complete, or partial (stopped by the host's shutdown)
    reason: str | None = None       # skipped: busy; failed: prune_refused or prune_failed
    message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def settings(kept: RetentionSpec, scheduled_for: datetime) -> dict[str, Any]:
    """The line's `data`, as the cloud's scheduled handler gives it, and the cron time the run is for."""
    return {"cron": kept.cron, "keep_days": kept.keep_days, "metrics_keep_days": kept.metrics_keep_days,
            "scheduled_for": _stamp(scheduled_for)}


class RetentionRun:
    """One prune of the stack's database as `goldgate prune` makes it. `interrupt` (from another thread) ends it
    at once: the statement in hand is rolled back, the ones before it stay."""

    def __init__(self, spec: StackSpec, home: Path, stop: Stop) -> None:
        self.spec, self.home, self.stop = spec, home, stop
        self.dir = StackDir(home, spec.name)
        self._conn: sqlite3.Connection | None = None
        self._guard = threading.Lock()

    def interrupt(self) -> None:
        with self._guard:
            if self._conn is not None:
                self._conn.interrupt()

    def __call__(self, scheduled_for: datetime) -> RetentionOutcome:
        kept = self.spec.database.retention
        assert kept is not None
        data = settings(kept, scheduled_for)
        with pruning(self.dir, f"the host of {self.spec.name}") as holder:
            if holder is not None:
                return RetentionOutcome("skipped", reason="busy", data={**data, "holder": holder},
                                        message=f"nothing pruned: {holder} holds {self.spec.name}'s database; the "
                                                "next scheduled run prunes")
            try:
                report = self._prune(kept)
            except RetentionStopped:
                return self._stopped(data)
            except sqlite3.OperationalError as exc:
                if self.stop.is_set():  # interrupted by the host's stop
                    return self._stopped(data)
                return self._failed(data, exc)
            except retention.PruneRefused as exc:
                return RetentionOutcome("failed", reason="prune_refused", data=data, error=exc,
                                        message=f"{exc}. The host's scheduled prune deletes nothing until then and "
                                                "tries again at its next time")
            except (GoldgateError, sqlite3.Error) as exc:
                return self._failed(data, exc)
            database = str(self.dir.db_path)
            try:
                record = str(retention.record(self.home, report, database,
                                              datetime.now(UTC).isoformat(timespec="seconds")))
            except OSError as exc:  # the rows went all the same: say so, and why no record says it
                record = f"not recorded: {describe(exc)}"
        stuck = report.unfinished_kept
        return RetentionOutcome(
            "pruned", status="complete",
            data={**data, "jobs_before": report.jobs_before, "metrics_before": report.metrics_before,
                  "deleted": report.deleted, "remaining": report.remaining, "unfinished_kept": stuck,
                  "database": database, "record": record},
            message=(f"{stuck} queued or in-progress jobs older than the cutoff were kept: they are stuck; "
                     f"`goldgate stuck {self.spec.name}` lists them, each with the line that recovers it "
                     "(docs/RUNBOOK.md, A stuck job)")
            if stuck else None)

    def _prune(self, kept: RetentionSpec) -> retention.PruneReport:
        retention.check_keep_days(self.spec, kept.keep_days, kept.metrics_keep_days)
        conn = retention.open_stack_db(self.dir.db_path)
        with self._guard:
            self._conn = conn
        try:
            # `goldgate prune`'s own run, guards included (the database's clock, the gap rule, the stack's jobs).
            return retention.prune_over(_StoppableSql(conn, self.stop), self.spec.name, "local", kept.keep_days,
                                        kept.metrics_keep_days, False, None, None,
                                        migrate=f"`goldgate up {self.spec.name}`")
        finally:
            with self._guard:
                self._conn = None
            conn.close()

    @staticmethod
    def _stopped(data: dict[str, Any]) -> RetentionOutcome:
        return RetentionOutcome("pruned", status="partial", data=data,
                                message="stopped by the stack's shutdown; what it deleted stays deleted (each "
                                        "statement stands alone), and the next run carries on")

    @staticmethod
    def _failed(data: dict[str, Any], exc: BaseException) -> RetentionOutcome:
        return RetentionOutcome("failed", reason="prune_failed", data=data, error=exc,
                                message=f"the scheduled prune failed ({describe(exc)}); what it deleted stays "
                                        "deleted, and the next scheduled run tries again")


# -- the schedule's loop ----------------------------------------------------------------------------------------

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RetentionCron:
    """Runs `run` at each time of `schedule` until `stopping` is set; `report` is told each outcome. The clock is
    read again at least every `poll_s`: a laptop that slept, or a clock set right, moves the run with it."""

    def __init__(self, schedule: CronSchedule, run: Callable[[datetime], RetentionOutcome],
                 report: Callable[[RetentionOutcome], None], stopping: threading.Event, *,
                 last_run: Callable[[], datetime | None] = lambda: None, clock: Clock = _utc_now,
                 poll_s: float = 30.0) -> None:
        self.schedule, self.run, self.report, self.stopping = schedule, run, report, stopping
        self.last_run, self.clock, self.poll_s = last_run, clock, poll_s

    def missed(self, now: datetime) -> datetime | None:
        """The scheduled time the stack missed while it was down (the latest one since the last recorded prune),
        or None. Cloudflare runs no missed cron time; a laptop stack that is rarely up at 03:30 UTC would then never
        be pruned, so the host runs the latest missed one once, when it starts (several missed are one run)."""
        due = self.schedule.last_at_or_before(now)
        if due is None:
            return None
        try:
            last = self.last_run()
        except (GoldgateError, OSError, ValueError):  # a damaged record: the run writes a new one
            last = None
        return due if last is None or last < due else None

    def loop(self) -> None:
        due = self.missed(self.clock())
        while not self.stopping.is_set():
            if due is None:
                due = self.schedule.next_after(self.clock())
                if due is None:
                    return  # parse() refuses a schedule that never fires
            now = self.clock()
            # A clock set back (it read ahead when the time was fixed): the schedule's next time by the clock now,
            # or a clock that read a year ahead at start would skip a year of runs.
            due = min(due, self.schedule.next_after(now) or due)
            if now < due:
                self.stopping.wait(min(self.poll_s, (due - now).total_seconds()))
                continue
            self.once(due)
            due = None

    def once(self, scheduled_for: datetime) -> None:
        """One run, whatever it raises: a failing run is reported and the next scheduled time tries again."""
        try:
            outcome = self.run(scheduled_for)
        except Exception as exc:  # noqa: BLE001 -- never the end of the host: reported, and run again next time
            outcome = RetentionOutcome("failed", reason="prune_failed", error=exc,
                                       data={"scheduled_for": _stamp(scheduled_for)},
                                       message=f"the scheduled prune failed ({describe(exc)}); the next scheduled "
                                               "run tries again")
        with contextlib.suppress(Exception):  # the log line is best effort (LogStream drops what it cannot write)
            self.report(outcome)


def last_recorded_prune(home: Path, stack: str) -> datetime | None:
    """When the last local prune of the stack (by `goldgate prune` or by the host) finished, from its record."""
    record = retention.latest_prune(home, stack, "local")
    if record is None:
        return None
    when = datetime.fromisoformat(str(record.get("finished_at")))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)

