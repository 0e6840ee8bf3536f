"""A local drill's backup prune counts back from this machine's clock: with the clock ten years ahead, a passed drill
deleted every backup but the one it had just taken. A drill whose clock reads more than storage.backup_retention_days
+ 366 days past the backups before its own deletes none of them (nor a dated drill record), says so in a note of its
output and record, and keeps refusing while the clock stays wrong; once the clock is right the prune goes ahead.
The clock is injected; nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from goldgate.local.platform import LocalPlatform
from goldgate.ops import dr
from goldgate.ops.backup import take_backup
from goldgate.ops.dr import DrillResult, latest_drill, run_local_drill

NOW = datetime.now(UTC)
AHEAD = NOW + timedelta(days=3652)  # a clock ten years fast
RETENTION = 30


def _backup_at(db: Path, home: Path, days_ago: float) -> Path:
    when = NOW - timedelta(days=days_ago)
    backup, _ = take_backup(db, home / "backups" / "staging", "staging", clock=lambda: when)
    return backup


def _backups(home: Path) -> set[str]:
    return {p.name for p in (home / "backups" / "staging").glob("*.sqlite")}


def _clock_notes(notes: list[str]) -> list[str]:
    return [n for n in notes if n.startswith("no backup taken up to") and "Set the clock right" in n]


def _drill(db: Path, home: Path, at: datetime) -> DrillResult:
    return run_local_drill("staging", db, home, backup_retention_days=RETENTION, clock=lambda: at)


def test_a_clock_ten_years_ahead_deletes_no_backup_and_the_drill_says_why(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    kept = {_backup_at(db, home, days).name for days in (45, 31, 2)}

    result = _drill(db, home, AHEAD)

    assert result.passed, result.error
    assert kept <= _backups(home), "backups were deleted by a clock ten years ahead"
    (note,) = _clock_notes(result.notes)
    assert "\n" not in note and "date -u" in note and str(home / "backups" / "staging") in note
    assert latest_drill(home, "staging", "local")["notes"] == result.notes  # in the record too
    # The next drill, the clock still wrong: the first drill's backup (stamped ten years ahead) does not let it by.
    again = _drill(db, home, AHEAD + timedelta(days=RETENTION + 1))
    assert again.passed and _clock_notes(again.notes)
    assert kept <= _backups(home)


def test_once_the_clock_is_right_the_drill_prunes_again(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    old, recent = _backup_at(db, home, 45), _backup_at(db, home, 2)
    assert _clock_notes(_drill(db, home, AHEAD).notes)
    fast = _backups(home) - {old.name, recent.name}  # the wrong clock's own backup, dated ten years ahead

    result = _drill(db, home, NOW)

    assert result.passed and not _clock_notes(result.notes)
    assert old.name not in _backups(home)
    assert {recent.name, Path(result.backup).name} | fast == _backups(home)


def test_dated_drill_records_are_kept_from_a_clock_far_ahead(tmp_path, stack_db):
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    _backup_at(db, home, 45)
    drills = home / "drills" / "staging"
    drills.mkdir(parents=True)
    records = [drills / f"{(NOW - timedelta(days=d)):%Y%m%dT%H%M%S}.000Z-local.json" for d in (60, 40, 1)]
    for path in records:
        path.write_text("{}")
    assert _clock_notes(_drill(db, home, AHEAD).notes)
    assert all(path.exists() for path in records)


def test_a_long_quiet_stretch_within_the_window_plus_a_year_still_prunes(tmp_path, stack_db):
    # No drill for 300 days (under 30 + 366): the clock is believed, and the old backups go as before.
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    older, old = _backup_at(db, home, 320), _backup_at(db, home, 300)
    result = _drill(db, home, NOW)
    assert result.passed and not _clock_notes(result.notes)
    assert {older.name, old.name}.isdisjoint(_backups(home))


def test_a_cloud_drill_keeps_its_dated_records_from_a_clock_far_ahead(tmp_path):
    # A cloud drill's backups expire by R2's rule (Cloudflare's clock); its dated records here go by this machine's.
    drills = tmp_path / "drills" / "staging"
    drills.mkdir(parents=True)
    records = [drills / f"{(NOW - timedelta(days=d)):%Y%m%dT%H%M%S}.000Z-cloud.json" for d in (60, 40, 1)]
    for path in records:
        path.write_text("{}")
    (note,) = dr._prune_old_records(tmp_path, "staging", "cloud", RETENTION, AHEAD)
    assert note.startswith("no dated drill record up to") and "date -u" in note
    assert all(path.exists() for path in records)
    assert dr._prune_old_records(tmp_path, "staging", "cloud", RETENTION, NOW) == []  # the clock right: they go
    assert [path.exists() for path in records] == [False, False, True]


def test_after_a_real_gap_the_backups_taken_since_are_pruned_as_usual(tmp_path, stack_db):
    # Drills stopped for 430 days (over 30 + 366), then ran weekly again with the clock right all along: the backups
    # from before the gap are kept (the clock cannot be told from one stepped ahead), but those taken since, by the
    # clock that reads now, go once they are past the window, as before (they used to pile up for good).
    home = tmp_path / "home"
    db = stack_db(LocalPlatform(home).db_path("staging"), jobs=5)
    before_gap = {_backup_at(db, home, days).name for days in (500, 490)}
    since = [_backup_at(db, home, days).name for days in (60, 53, 46, 39, 32, 25, 18, 11, 4)]

    result = _drill(db, home, NOW)

    assert result.passed and _clock_notes(result.notes)
    assert before_gap <= _backups(home)
    assert _backups(home) == before_gap | set(since[-4:]) | {Path(result.backup).name}
