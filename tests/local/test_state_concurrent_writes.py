"""Two writers of one state file (the RunPod emulator saves its state from concurrent requests) each put a whole
file in place: with one shared temp name, one writer renamed the other's half-written file into place, and the
other's rename then failed (FileNotFoundError)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from goldgate.local.state import write_json_atomic


def test_concurrent_writers_of_one_file_never_fail_and_leave_a_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(200):
                write_json_atomic(target, {"writer": n, "i": i, "pad": "x" * 20_000})
        except BaseException as exc:  # noqa: BLE001 -- collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads(target.read_text())["pad"] == "x" * 20_000
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]   # no temp file left behind
