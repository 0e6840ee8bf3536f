"""A merge of several mappings (`<<: [*a, *b]`) takes each key from the first mapping that has it, as the YAML
merge-key spec and Pulumi's YAML reader do. PyYAML 6.0.4 takes the last one's for any key of two or more characters
(yaml/pyyaml#953): a stack file would then deploy a value Pulumi never reads. pyyaml stays pinned at 6.0.3
(pyproject.toml) until a release fixes it; this test fails on a version that does not."""

from __future__ import annotations

from pathlib import Path

import yaml

from goldgate import spec as specs

ANCHORS = "x-one: &one {workers_max: 4, workers_min: 1}\nx-two: &two {workers_max: 6, workers_min: 2}\n"


def _prod_endpoint_merging(tmp_path: Path, merge: str) -> specs.EndpointSpec:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    for key in ("workers_max", "workers_min"):  # only the merged mappings set them
        del doc["stacks"]["prod"]["endpoint"][key]
    text = ANCHORS + yaml.safe_dump(doc)
    assert text.index("  prod:\n") < text.index("    endpoint:\n")  # the first endpoint is prod's (keys sorted)
    path = tmp_path / "local.yaml"
    path.write_text(text.replace("    endpoint:\n", f"    endpoint:\n      <<: {merge}\n", 1))
    return specs.load_local("prod", path).endpoint


def test_the_first_mapping_of_a_merge_sequence_wins(tmp_path: Path) -> None:
    endpoint = _prod_endpoint_merging(tmp_path, "[*one, *two]")
    assert (endpoint.workers_max, endpoint.workers_min) == (4, 1)


def test_the_order_of_the_sequence_decides_not_the_order_of_the_anchors(tmp_path: Path) -> None:
    endpoint = _prod_endpoint_merging(tmp_path, "[*two, *one]")
    assert (endpoint.workers_max, endpoint.workers_min) == (6, 2)
