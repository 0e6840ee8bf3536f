"""Gaps a mutation audit of the reload parts of goldgate/local/state.py found: while `goldgate reload` holds a
stack, a deploy or another reload is told the reload holds it (with its pid), not a deploy; and a client's token
file rewritten in place at the same length reads as replaced (what `goldgate reload` reports as applied, and what
`goldgate up` on a running stack reports as changed)."""

from __future__ import annotations

import os

from goldgate.local import client_tokens
from goldgate.local.state import StackDir, secret_file_changes


def test_a_deploy_or_a_reload_beside_a_reload_is_told_the_reload_holds_the_stack(tmp_path) -> None:
    d = StackDir(tmp_path, "staging")
    with d.reloading() as holder:
        assert holder is None
        for other in (d.deploying, d.reloading):
            with other() as held_by:
                assert held_by == f"`goldgate reload staging` (pid {os.getpid()})", held_by
    with d.deploying() as holder:  # let go on leaving
        assert holder is None


def test_a_clients_file_rewritten_in_place_at_the_same_length_reads_as_replaced(tmp_path) -> None:
    d = StackDir(tmp_path, "staging")
    d.ensure()
    token = client_tokens.add_client(d, "alice")
    path = client_tokens.clients_dir(d) / "alice"
    before = d.rotated_secrets_stamp()
    with open(path, "r+", encoding="ascii") as f:  # the same inode and size: only its mtime says it changed
        f.write(token[::-1] + "\n")
    later = os.stat(path).st_mtime_ns + 1_000_000
    os.utime(path, ns=(later, later))
    assert secret_file_changes(before, d.rotated_secrets_stamp()) == ["secrets/clients/alice (replaced)"]
    assert secret_file_changes(before, before) == []
