"""scripts/golden-tests/README.md, where a team adding a golden case looks, says what the runner does: its example
case loads, and its table names every `expect` key with the default the runner applies."""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path

from goldgate.cli import build_parser
from goldgate.release.cases import _EXPECT_KEYS, GOLDEN_DIR, Expectations, load_case

README = GOLDEN_DIR / "README.md"


def _expect_table() -> list[tuple[list[str], list[str]]]:
    """(keys, default values) of each row of the `expect` table, as written between backticks."""
    rows = re.findall(r"^\| (`[^|]+) \| ([^|]+) \|", README.read_text(), re.MULTILINE)
    return [(re.findall(r"`(\w+)`", keys), re.findall(r"`([^`]+)`", default)) for keys, default in rows]


def test_the_readme_documents_every_expect_key_with_the_runners_default() -> None:
    table = _expect_table()
    assert sorted(k for keys, _ in table for k in keys) == sorted(_EXPECT_KEYS)
    defaults = Expectations()
    assert {f.name for f in fields(Expectations)} == _EXPECT_KEYS
    for keys, values in table:
        for key, value in zip(keys, values, strict=False):
            applied = getattr(defaults, key)
            if applied is not None and key != "max_latency_s":   # that one is the stack's limit, named by key
                assert value == str(applied), f"README says {key} defaults to {value}, the runner uses {applied}"


def test_the_readmes_example_case_is_a_valid_case(tmp_path: Path) -> None:
    (example,) = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.DOTALL)
    case_file = tmp_path / "sdxl-lighthouse.yaml"
    case_file.write_text(example)
    case = load_case(case_file)
    assert (case.workflow, case.smoke, case.expect.width, case.expect.max_hash_distance) == ("sdxl-txt2img", True,
                                                                                            768, 6)


def test_the_readmes_commands_parse() -> None:
    lines = [ln.split("#", 1)[0].strip() for ln in README.read_text().splitlines() if ln.startswith("    goldgate ")]
    assert len(lines) == 4   # a run, a smoke run, and the first cloud release's references and run
    for line in lines:
        build_parser().parse_args(shlex.split(line)[1:])   # argparse exits on a flag that does not exist
