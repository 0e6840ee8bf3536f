"""A local stack's long-lived processes do not hold the operator's cloud credentials.

`goldgate up` is run from the shell an operator also runs `pulumi up` from: CLOUDFLARE_API_TOKEN,
PULUMI_CONFIG_PASSPHRASE, RUNPOD_API_KEY, AWS keys. The stack host and the service it starts inherited all of it, and
kept it readable in /proc/<pid>/environ for as long as the stack ran (days). A local stack needs none of them: its
own secrets are files in its state dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci_policy import needs
from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform

pytestmark = needs(Path("/proc/self/environ").is_file(), "/proc (the test reads each process's environment)")

STACK = "staging"
OPERATORS_SHELL = {"CLOUDFLARE_API_TOKEN": "cf-token-7d0c2a91e5", "PULUMI_CONFIG_PASSPHRASE": "pulumi-pass-51be0f",
                   "RUNPOD_API_KEY": "rp-key-0a9e3c77", "AWS_SECRET_ACCESS_KEY": "aws-secret-c4d2e8f1"}


def _tree(pid: int) -> Iterator[int]:
    yield pid
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        yield from _tree(int(child))


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode(errors="replace").split("=", 1) for item in raw.split(b"\0") if b"=" in item)


def test_the_stacks_processes_run_without_the_operators_cloud_credentials(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in OPERATORS_SHELL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOLDGATE_PROBE_PLAIN", "kept")  # an ordinary variable goes through
    platform = LocalPlatform(home, stacks_file(home))
    try:
        platform.up(STACK)
        host = platform.require_running(STACK)["pid"]
        processes = list(_tree(host))
        assert len(processes) >= 2, "the host and at least the service it starts"
        for pid in processes:
            env = _environ(pid)
            held = sorted(name for name, value in OPERATORS_SHELL.items() if value in env.values())
            assert held == [], f"pid {pid} ({Path(f'/proc/{pid}/cmdline').read_bytes()[:80]!r}) holds {held}"
        assert _environ(host).get("GOLDGATE_PROBE_PLAIN") == "kept"
        assert os.environ["CLOUDFLARE_API_TOKEN"] == OPERATORS_SHELL["CLOUDFLARE_API_TOKEN"]  # goldgate's own is kept
    finally:
        platform.down(STACK)
