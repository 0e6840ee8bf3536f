"""A deploy to PROD on a full disk (what a local `goldgate promote` or `goldgate rollback` runs) refuses before it
moves anything, as on STAGING; its line ended "run the deploy again", but PROD takes no `goldgate deploy`: it names
the promote or rollback to run again.

A full disk is simulated as RLIMIT_FSIZE 0 on the deploying process alone (EFBIG where a full disk says ENOSPC), as
tests/local/test_review14_c2_deploy_disk_full.py does."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import REPO, LocalPlatform
from goldgate.local.state import StackDir

# LocalPlatform.deploy, as promote and rollback call it, in a process that can write no byte to any file.
_FULL_DISK_DEPLOY = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    from goldgate.errors import StateError
    from goldgate.local.platform import LocalPlatform
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    try:
        LocalPlatform(Path(sys.argv[1])).deploy("prod", sys.argv[2])
    except StateError as exc:
        print(exc)
        sys.exit(1)
""")


def test_a_prod_deploy_on_a_full_disk_names_the_promote_or_rollback_to_run_again(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    first = image_store.build_local_image(WORKER_SOURCE, home)
    source = tmp_path / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write("\n# a change to the worker tree makes a new image\n")
    second = image_store.build_local_image(source, home)
    try:
        platform.up("prod")
        assert platform.deploy("prod", first).image == first
        done = subprocess.run([sys.executable, "-c", _FULL_DISK_DEPLOY, str(home), second], cwd=REPO, timeout=120,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 1, done
        said = done.stdout.strip()
        assert said.startswith(f"cannot deploy {second} to prod: File too large writing to "), said
        assert said.endswith(f"nothing was pinned and prod still serves {first}. Free some space, then run the "
                             "`goldgate promote` or `goldgate rollback` again"), said
        assert StackDir(home, "prod").pinned_image() == first
    finally:
        platform.down("prod")
