"""An error line cut to its bound keeps its first 200 characters verbatim (what failed, and the file or value named
first), cuts its longest run of prose first, and keeps every command whole: a mutation audit found the first two rules
could be dropped with every earlier test still passing."""

from __future__ import annotations

from goldgate.cli import MAX_ERROR_CHARS, one_line

CASES = " ".join(f"case-{n:03d} differs by {n % 7}.{n % 10} percent" for n in range(120))


def test_the_first_200_characters_stay_whole_when_the_opening_prose_must_be_cut_too() -> None:
    start = ("cannot promote: /srv/ci/checkout/scripts/golden-tests/reports/staging-eu/2026-12-01T23-40-22Z/report.json "
             "says the golden run on STAGING of sha256:5e0c1d2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d "
             "failed 3 of its 12 cases (")
    # A command long enough that the opening prose, too, must give up characters for the line to fit.
    command = ("goldgate golden staging-eu --target cloud --cases-dir /srv/ci/checkout/scripts/golden-tests/cases "
               "--reports-dir /srv/ci/goldgate/reports/staging-eu/release-2026.12.0")
    message = (f"{start}{CASES[:700]}): run `{command}` and look at each image ({CASES}); then "
               "`goldgate promote --target cloud` again")
    line = one_line(message)
    assert len(line) <= MAX_ERROR_CHARS
    assert line.startswith(message[:200]), line[:220]
    assert f"`{command}`" in line and line.endswith("`goldgate promote --target cloud` again"), line


def test_the_longest_run_is_cut_and_a_shorter_reason_before_the_command_stays_whole() -> None:
    reason = ("the image it names was built from a commit the staging ledger does not hold, so its golden report "
              "cannot be matched to it; rebuild it from the commit you mean to release, and")
    message = (f"cannot promote sha256:{'5e0c' * 16} from /srv/ci/goldgate/reports/staging-eu/report.json: {reason} "
               f"run `goldgate golden staging-eu --target cloud` (the cases that differ: {CASES}) again")
    assert len(message[:message.index(reason)]) < 200 < len(message[:message.index(reason) + len(reason)])
    line = one_line(message)
    assert len(line) <= MAX_ERROR_CHARS
    assert reason in line and "`goldgate golden staging-eu --target cloud`" in line, line


def test_a_command_longer_than_any_prose_is_still_kept_whole_and_a_line_at_the_bound_is_not_cut() -> None:
    command = ("goldgate release --target cloud --repo registry.example/team/worker --cases-dir "
               "/srv/ci/checkout/scripts/golden-tests/cases --reports-dir /srv/ci/goldgate/reports/staging-eu")
    message = f"the release stopped ({CASES[:330]}); run `{command}` again ({CASES[:140]})"
    line = one_line(message)
    assert len(line) <= MAX_ERROR_CHARS and f"`{command}`" in line, line
    exact = "x" * MAX_ERROR_CHARS
    assert one_line(exact) == exact
