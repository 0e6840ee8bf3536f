"""Shared test setup. `tests/` is on sys.path (pytest's rootdir conftest), so test modules import
`ci_policy.require` (or the mark `ci_policy.needs`) for components a machine may lack."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import pytest

# Bytecode caches on, for this run and every process it starts. With PYTHONDONTWRITEBYTECODE set (some machines set
# it for every shell, CI's among them) nothing is cached: each xdist worker rewrote and compiled every test module
# again (about 25 s of CPU to collect, against 10 s with caches), and each of the thousands of processes the tests
# start (the CLI, stack hosts, services, workers) compiled goldgate's modules from source. Caches are ignored by git
# and left out of image builds (images/worker/.dockerignore, goldgate/local/image_store.py). Here, the rootdir
# conftest, runs in the controller before it starts the xdist workers, so they inherit it.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    sys.dont_write_bytecode = False

# Ctrl-C reaches the processes the tests start, and this one. A suite started in the background (`./.ci/run &`,
# nohup) has SIGINT ignored, which every process it starts inherits across exec: the tests of Ctrl-C (an `up`, a
# golden run, a command's exit status 130) then failed for the launching shell's reason. A handler here is reset to
# the default at each exec, so the processes the tests start take Ctrl-C as a user's terminal gives it them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ci_missing(what): `what` is missing on a CI machine (ci_policy.needs)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    mark = item.get_closest_marker("ci_missing")
    if mark is not None:  # ci_policy.needs under CI=true: a missing component fails the test, as `require` does
        pytest.fail(f"{mark.args[0]} is required under CI (the CI machine has it) but is missing")


# GG_TEST_TIMELINE=<file>: each test's worker, file, start and end (wall clock) appended as JSON lines, for
# scripts/test_timeline.py to show which files run last and bound the suite's wall time (pytest-xdist runs a file on
# one worker; `--durations` gives no order). Off unless set.
_TIMELINE = os.environ.get("GG_TEST_TIMELINE")


if _TIMELINE:
    import json
    import time

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        start = time.time()
        yield
        line = {"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "file": item.location[0],
                "test": item.nodeid, "start": round(start, 3), "end": round(time.time(), 3)}
        with open(_TIMELINE, "a", encoding="utf-8") as out:  # one short line per write: appends stay whole
            out.write(json.dumps(line) + "\n")
