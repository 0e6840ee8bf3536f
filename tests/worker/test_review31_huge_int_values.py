"""A YAML hex literal of thousands of digits is an integer Python refuses to print (over 4,300 decimal digits): a
manifest or custom_nodes.yaml holding one inside a list was a ValueError traceback from the error message's own repr,
not a refusal naming the field. Found by the fuzz test of manifests (test_review24_fuzz_worker_inputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from images.worker.custom_nodes import CustomNodesError, load_custom_nodes
from images.worker.manifest import ManifestError, load_manifest

HUGE = "0x" + "f" * 4000   # YAML reads it in base 16, which has no digit limit; its decimal form has ~4,800 digits


def test_a_manifest_file_entry_holding_a_huge_integer_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(f"schema: 1\nmodels:\n  - file: [{HUGE}]\n    kind: checkpoint\n    directory: checkpoints\n"
                    "    size: 1\n    sha256: null\n    source_url: https://example.invalid/m.safetensors\n")
    with pytest.raises(ManifestError, match=r"models\[0\]\.file must be a plain file name, got \[<an integer of "
                                            r"16000 bits>\]"):
        load_manifest(path)


def test_a_custom_nodes_entry_holding_a_huge_integer_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "custom_nodes.yaml"
    path.write_text(f"schema: 1\ncustom_nodes:\n  - url: https://example.invalid/n.git\n"
                    f"    commit: '{'a' * 40}'\n    nodes: [{HUGE}]\n")
    with pytest.raises(CustomNodesError, match=r"<an integer of 16000 bits>"):
        load_custom_nodes(path)
