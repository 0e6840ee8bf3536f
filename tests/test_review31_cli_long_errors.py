"""A long error line is cut in its prose, never inside a command it names: the command must stay copyable.

Before, every line over 600 characters was cut in its middle, so a long value early in the line (a pasted file, a long
path) could swallow the `goldgate ...` command its advice names, or cut it in two."""

from __future__ import annotations

import re

from goldgate.cli import MAX_ERROR_CHARS, one_line

# A release command as a CI job's failure names it: its repository, build context and golden paths.
COMMAND = ("goldgate release --target cloud --repo registry.example/team/worker --context /srv/ci/checkout/images/worker "
           "--staging staging-eu --prod prod-eu --cases-dir /srv/ci/checkout/scripts/golden-tests/cases "
           "--reports-dir /srv/ci/goldgate/reports")


def test_a_long_value_is_cut_and_the_command_after_it_kept_whole() -> None:
    line = one_line(f"could not read {'x' * 3000}: fix it, then run `{COMMAND}`")
    assert len(line) <= MAX_ERROR_CHARS
    assert f"`{COMMAND}`" in line
    assert line.startswith("could not read xxx")
    assert re.search(r"…\(\d+ characters cut\)…", line)


def test_two_commands_between_long_prose_are_both_kept_and_the_advice_at_the_end_too() -> None:
    message = ("a" * 400 + " `goldgate golden staging --target cloud` " + "b" * 400
               + " `goldgate promote --target cloud` then look at PROD " + "c" * 100)
    line = one_line(message)
    assert len(line) <= MAX_ERROR_CHARS
    assert "`goldgate golden staging --target cloud`" in line and "`goldgate promote --target cloud`" in line
    assert line.endswith("then look at PROD " + "c" * 100)


def test_a_line_of_commands_alone_or_with_unpaired_backticks_is_still_bounded() -> None:
    assert len(one_line("`" + "y" * 2000 + "`")) <= MAX_ERROR_CHARS
    assert len(one_line("a`b" * 500)) <= MAX_ERROR_CHARS
    assert one_line("short `goldgate status`") == "short `goldgate status`"
