"""Review 29 (mut): a local stack's host stopped by a signal goldgate did not send is said to be, whichever signal: a
SIGINT (`kill -INT`, a Ctrl-C reaching its process group) too, by name. And words a `goldgate down` left in the up
lock when it was killed (its pid since reused, here by this very test process) do not make such a stop look asked
for: the asker is believed only while it holds the lock."""

from __future__ import annotations

import os
import signal

from test_review28_crashfix_stop_by_signal import SENT, _insert, _stop_host, _stopped_lines, platform  # noqa: F401

from goldgate.local.state import StackDir


def test_a_sigint_with_stale_down_words_in_the_up_lock_is_a_stop_nobody_asked_for(platform):  # noqa: F811
    home = platform.home
    d = StackDir(home, "staging")
    _insert(d.db_path, SENT, "rp-in-flight-1")
    # what a `goldgate down` killed mid-way leaves: its words, naming a live process, and no lock held
    d.up_lock_file.write_text(f"down {os.getpid()}\n")
    _stop_host(platform, signal.SIGINT)

    [line] = _stopped_lines(home)
    assert line["level"] == "warning", line
    assert line["data"]["signal"] == "SIGINT" and line["data"]["job_ids"] == [SENT], line
    ended = platform.status("staging").ended
    assert ended and "stopped by a signal (SIGINT" in ended and "1 job(s) were still queued" in ended, ended
