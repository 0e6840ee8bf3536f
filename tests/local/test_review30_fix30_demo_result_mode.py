"""Review 30 (fix30): `goldgate demo` saves each result image 0644 less the umask, but a file already at its name kept
its own mode through the write (O_TRUNC changes none): one saved 0666 before (under umask 000, by an earlier
goldgate) stayed writable by every user with the new image in it. It now loses what a new file would not get before
it is written; one whose mode this user cannot change (another user's) is refused, and nothing is written to it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from ci_policy import needs

from goldgate.commands.local import _save_result

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
OLD, NEW = b"\x89PNG an earlier result", b"\x89PNG this run's result, longer than the earlier one"


def test_a_result_saved_over_a_file_writable_by_every_user_is_no_longer_so(tmp_path: Path) -> None:
    target = tmp_path / "results_0123_0.png"
    target.write_bytes(OLD)
    target.chmod(0o666)
    _save_result(target, NEW)
    assert oct(target.stat().st_mode & 0o777) == "0o644"   # before: 0o666, the new image in it
    assert target.read_bytes() == NEW


@needs(os.geteuid() == 0, "root (only root can leave a file of another user where a test user saves)")
def test_a_file_of_another_user_that_others_can_write_is_refused_untouched() -> None:
    shared = Path(tempfile.mkdtemp(prefix="goldgate-fix30-out-"))   # under the temp root: reachable by nobody
    try:
        shared.chmod(0o777)
        target = shared / "results_0123_0.png"
        target.write_bytes(OLD)
        target.chmod(0o666)
        # Becomes nobody once imported (the interpreter may sit where nobody can reach it), then saves.
        child = textwrap.dedent(f"""
            import os, sys
            from pathlib import Path
            from goldgate.commands.local import _save_result
            from goldgate.errors import GoldgateError
            os.setgroups([])
            os.setgid({NOBODY})
            os.setuid({NOBODY})
            try:
                _save_result(Path({str(target)!r}), {NEW!r})
            except GoldgateError as exc:
                print(exc)
                sys.exit(1)
        """)
        done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=False,
                              cwd=shared, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 1, done.stdout + done.stderr   # before: 0, this run's image in root's 0666 file
        assert f"cannot save a result to {target}: a file of another user is there, mode 0666" in done.stdout
        assert "give --out another directory" in done.stdout
        assert target.read_bytes() == OLD   # nothing written to it, not even emptied
    finally:
        shutil.rmtree(shared)
