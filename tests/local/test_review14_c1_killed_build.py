"""A `goldgate build` killed while it copies the worker (Ctrl-\\, a CI job cancelled, the OOM killer) left its staging
dir under <home>/images for good: a copy of the worker with every model baked at its full size (about 36 GB here,
sparse where the file system allows), which each later copy or backup of the home paid in full, one per killed build.
The next build now removes a staging dir no build has touched for an hour; one being built is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import REPO

# A build in a process of its own, killed (SIGKILL) once it has begun to bake the models.
_KILLED_BUILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from goldgate.local import image_store
    real = Path.open
    def open_(self, mode="r", *args, **kwargs):
        if "models" in self.parts and "w" in mode:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, mode, *args, **kwargs)
    Path.open = open_
    image_store.build_local_image(Path(sys.argv[1]), Path(sys.argv[2]))
""")


def test_the_next_build_removes_what_a_killed_build_left(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-c", _KILLED_BUILD, str(WORKER_SOURCE), str(home)], cwd=REPO,
                          timeout=120, capture_output=True, text=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    left = list((home / "images").glob(".build-*"))
    assert len(left) == 1 and (left[0] / "worker" / "handler.py").is_file(), left
    old = time.time() - 2 * 3600
    os.utime(left[0], (old, old))  # the killed build, hours later
    in_progress = home / "images" / ".build-in-progress"
    in_progress.mkdir()  # another build's, just made: not to be touched

    ref = image_store.build_local_image(WORKER_SOURCE, home)

    assert image_store.resolve(ref, home).is_dir()
    assert not left[0].exists(), "the killed build's staging dir is still there"
    assert in_progress.is_dir(), "a build in progress lost its staging dir"
