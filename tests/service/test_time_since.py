"""GET /api/metrics?since=<time>: every ISO 8601 spelling a client may send, encoded in its URL or not,
selects exactly the rows a plain datetime comparison selects, or is a 400 that names the value."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from service_testkit import migrated_memory_db

from service.http import Request
from service.metrics import MetricsError, compute_sqlite

START = datetime(2026, 3, 29, tzinfo=UTC)  # a DST change day in Europe: offsets that move are common


def stored(moment: datetime) -> str:
    """A row's created_at, as the service writes it (service.jobs.iso_ms)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def database(moments: list[datetime]) -> sqlite3.Connection:
    conn = migrated_memory_db()
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, e2e_ms, created_at) "
                     "VALUES (?, 's', 'completed', 1000, ?)", [(f"j{i}", stored(m)) for i, m in enumerate(moments)])
    return conn


def spell(moment: datetime, offset_min: int | None, sep: str, zulu: str, digits: int) -> str:
    """`moment` as a client writes it: in the zone `offset_min` (None: naive, meaning UTC), `zulu` for UTC."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_min or 0)))
    text = local.replace(tzinfo=None).isoformat(sep=sep, timespec={0: "seconds", 3: "milliseconds",
                                                                   6: "microseconds"}[digits])
    if offset_min is None:
        return text
    if offset_min == 0 and zulu:
        return text + zulu
    sign, minutes = ("+" if offset_min >= 0 else "-"), abs(offset_min)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def through_url(text: str, plus_encoded: bool) -> str | None:
    """What the service reads from `?since=<text>`: spaces sent as '+', a '+' as %2B or (a common slip) as is."""
    query = "since=" + text.replace("+", "%2B" if plus_encoded else "+").replace(" ", "+")
    return Request("GET", "/api/metrics", query).query("since")


def selected(conn: sqlite3.Connection, since: str | None) -> int:
    return compute_sqlite(conn, since)["overall"]["count"]


rows = st.lists(st.integers(0, 3 * 86_400_000), min_size=1, max_size=40)  # ms after START


@settings(max_examples=300, deadline=None)
@given(rows=rows, pick=st.integers(0, 39), nudge_us=st.integers(-2000, 2000),
       offset_min=st.one_of(st.none(), st.integers(-12 * 4, 14 * 4).map(lambda q: q * 15)),
       sep=st.sampled_from(["T", "t", " "]), zulu=st.sampled_from(["Z", "z", ""]), digits=st.sampled_from([0, 3, 6]),
       plus_encoded=st.booleans())
@example(rows=[7_200_000], pick=0, nudge_us=0, offset_min=120, sep="t", zulu="", digits=0, plus_encoded=False)
@example(rows=[7_200_000], pick=0, nudge_us=0, offset_min=120, sep=" ", zulu="", digits=3, plus_encoded=False)
def test_every_spelling_of_since_selects_the_rows_a_datetime_comparison_selects(
        rows, pick, nudge_us, offset_min, sep, zulu, digits, plus_encoded):
    moments = [START + timedelta(milliseconds=ms) for ms in rows]
    # A bound on, just before or just after a row: where text comparison and rounding could go wrong.
    since = moments[pick % len(moments)] + timedelta(microseconds=nudge_us)
    since = since.replace(microsecond=since.microsecond // 10 ** (6 - digits) * 10 ** (6 - digits))
    sent = through_url(spell(since, offset_min, sep, zulu, digits), plus_encoded)
    assert selected(database(moments), sent) == sum(m >= since for m in moments), sent


@pytest.mark.parametrize("text", ["2026-03-29", "20260329"])
def test_a_date_alone_means_midnight_utc(text):
    conn = database([START - timedelta(milliseconds=1), START, START + timedelta(hours=23)])
    assert selected(conn, through_url(text, plus_encoded=False)) == 2


@pytest.mark.parametrize("text", ["yesterday", "1774742400", "2026-03-29T25:00:00Z", "2026-03-29T00:00:00 GMT",
                                  "2026-02-30"])
def test_a_since_that_is_no_time_is_a_400_naming_it(text):
    with pytest.raises(MetricsError, match="since must be an ISO 8601 time") as refused:
        selected(database([START]), through_url(text, plus_encoded=False))
    assert repr(text) in str(refused.value)
