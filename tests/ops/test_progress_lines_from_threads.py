"""Progress from steps running at once (`release` starts STAGING and PROD together) stays one line per message."""

from __future__ import annotations

import io
import sys
import threading

from goldgate.commands import output


class SlowStream(io.StringIO):
    """A stream whose writes yield the GIL between them, as a terminal's or a pipe's do."""

    def write(self, text: str) -> int:
        written = super().write(text)
        threading.Event().wait(0.001)
        return written


def test_progress_from_several_threads_never_runs_two_lines_together(monkeypatch) -> None:
    stream = SlowStream()
    monkeypatch.setattr(sys, "stderr", stream)
    messages = [f"stack{t}: step {i}" for t in range(4) for i in range(25)]
    threads = [threading.Thread(target=lambda t=t: [output.progress(m) for m in messages if m.startswith(f"stack{t}")])
               for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = stream.getvalue().splitlines()
    assert sorted(lines) == sorted(f"… {m}" for m in messages)
