"""changed_code reads back a record from state.json: only this checkout's own sources are read to compare it.
An entry naming a file outside the checkout's packages, or one that is no Python source, is reported changed
whatever digest it carries, and its file is never read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from goldgate.local.state import CODE_ROOT, changed_code

OPENAPI = "goldgate/local/runpod/runpod-rest-v2-openapi.json"  # in a package, but no source


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_entry_outside_the_checkouts_sources_is_changed_whatever_its_digest(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text("print('not goldgate')\n")
    record = {str(outside): _digest(outside), OPENAPI: _digest(CODE_ROOT / OPENAPI),
              "goldgate/local/state.py": _digest(CODE_ROOT / "goldgate" / "local" / "state.py")}
    assert changed_code(record) == sorted([str(outside), OPENAPI])


def test_a_host_whose_code_changed_in_many_files_names_three_and_counts_the_rest(tmp_path: Path) -> None:
    from goldgate.local.platform import LocalPlatform

    record = {f"goldgate/gone_{n}.py": "0" * 64 for n in range(5)}  # files an upgrade removed
    said = LocalPlatform(tmp_path / "home")._code_changed("staging", {"code": record})
    assert said is not None and said.startswith(
        "its host runs the goldgate code it started with, which this checkout has changed since (goldgate/gone_0.py, "
        "goldgate/gone_1.py, goldgate/gone_2.py and 2 more: an upgrade, or an edit); `goldgate down staging && "
        "goldgate up staging` runs this checkout's"), said


def test_a_code_record_that_is_no_mapping_reads_as_an_older_hosts(tmp_path: Path) -> None:
    from goldgate.local.platform import LocalPlatform

    said = LocalPlatform(tmp_path / "home")._code_changed("staging", {"code": ["goldgate/cli.py"]})
    assert said is not None and said.startswith("its host was started by an older goldgate, whose code it still "
                                                "runs (goldgate was upgraded since); "), said
