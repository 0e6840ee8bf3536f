"""A security audit's findings on the local target: the stack's directory (its database holds every prompt, its
objects every result) is its owner's alone, and a rotation's previous secret written after the host started is
masked in the host's lines once a service reads it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

from goldgate.local.state import StackDir

SECRET = "5f1c0e9a7b3d2c4e6a8b0d1f3e5c7a9b"


def test_a_stacks_directory_is_its_owners_alone(home: Path) -> None:
    old = os.umask(0o022)  # the usual umask: directories 0755, readable by every user of the machine
    try:
        d = StackDir(home, "staging")
        d.ensure()
    finally:
        os.umask(old)
    assert stat.S_IMODE(d.root.stat().st_mode) == 0o700


def test_a_previous_secret_written_after_the_host_started_is_masked_once_a_service_reads_it(home: Path) -> None:
    from stackfiles import stacks_file

    from goldgate.local.stackhost import StackHost

    host = StackHost("prod", home, stacks_file(home))
    # What `start()` sets before any service starts (the emulators' addresses); none is contacted here.
    host.runpod, host.endpoint_id = SimpleNamespace(endpoint_base="http://127.0.0.1:9/v2"), "ep-test"
    host.s3_url = "http://127.0.0.1:9"
    try:
        host.dir.secret_file("webhook_secret_previous").write_text(SECRET)  # the rotation's first step
        assert host.service_config(None)["webhook_secret_previous"] == SECRET  # what a deploy's new service reads
        host.log.error("stack.start_failed", message=f"a config quoted in an error: {SECRET}")
    finally:
        host.listener.close()
    text = (host.dir.logs_dir / "stackhost.jsonl").read_text()
    assert "a config quoted in an error" in text and SECRET not in text
