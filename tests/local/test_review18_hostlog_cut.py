"""The stack host's log (stackhost.jsonl) on a disk that fills up. Each line is one os.write, and a write that
fails is dropped, never raised (the host keeps serving). But a write that goes in only in part raises nothing:
the rest of that line was lost without being counted, and the next line, once the disk had room again, was
glued onto the cut one, so neither parsed. Now a cut line is counted as dropped and the next line starts on a
line of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from goldgate.local import stackhost

SOURCE = Path(stackhost.__file__).resolve().parents[2]  # the tree under test, for the child to import it from

_FILLS_UP = textwrap.dedent("""
    import resource, signal, sys
    from goldgate.local.stackhost import LogStream
    from goldgate.logs import JsonLogger

    stream = LogStream(open(sys.argv[2], "ab", buffering=0))
    log = JsonLogger("orchestrator", stream, stack="test")
    log.info("stack.ready", message="before the disk filled")
    # A write past the limit goes in part, then fails (EFBIG), as writes do on a disk filling up (ENOSPC).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), hard))
    for _ in range(20):  # each line is over the room left: the first goes out in part, the rest not at all
        log.info("stack.ready", message="x" * 500)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again
    log.info("stack.ready", message="after the disk had room again")
    print(stream.dropped)
""")


def test_the_host_logs_first_line_after_the_disk_had_room_again_is_whole(tmp_path: Path) -> None:
    out = tmp_path / "stackhost.jsonl"
    out.write_text('{"placeholder": 1}\n')
    size = out.stat().st_size
    done = subprocess.run([sys.executable, "-c", _FILLS_UP, str(size + 400), str(out)], check=False,
                          capture_output=True, text=True, timeout=60, cwd=SOURCE)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == 20  # every line that did not go in whole is counted, the cut one too
    parsed = []
    for line in out.read_text().splitlines()[1:]:
        if not line:
            continue  # the line break that closes a refused line: blank, no record lost
        try:
            parsed.append(json.loads(line)["message"])
        except ValueError:
            parsed.append("<cut>")
    assert parsed == ["before the disk filled", "<cut>", "after the disk had room again"], parsed
