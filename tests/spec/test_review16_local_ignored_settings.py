"""A local stack file may not carry what the local target would silently ignore: an `image` (a local stack runs what
its state dir pins), `scaler_type: REQUEST_COUNT` (RunPod refuses it beside the idle timeout; the local RunPod ran it
and dropped the timeout) or a `network_volume_id` (nothing is mounted). Each was accepted and had no effect, so the
user believed in a setting they did not have; each is now refused by name, and the shipped file still loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

SHIPPED = Path(__file__).resolve().parents[2] / "stacks" / "local.yaml"
DIGEST = "registry.example/goldgate/worker@sha256:" + "a" * 64


def _with(tmp_path: Path, stack: str, path: tuple[str, ...], value: object) -> Path:
    doc = yaml.safe_load(SHIPPED.read_text())
    node = doc["stacks"][stack]
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    out = tmp_path / "local.yaml"
    out.write_text(yaml.safe_dump(doc))
    return out


@pytest.mark.parametrize(("path", "value", "named", "advice"), [
    (("image",), DIGEST, "stacks.staging.image", "goldgate deploy"),
    (("endpoint", "scaler_type"), "REQUEST_COUNT", "stacks.staging.endpoint.scaler_type", "use QUEUE_DELAY"),
    (("endpoint", "network_volume_id"), "vol123abc", "stacks.staging.endpoint.network_volume_id", "remove the line"),
])
def test_a_setting_the_local_target_would_ignore_is_refused_by_name(
        tmp_path: Path, path: tuple[str, ...], value: object, named: str, advice: str) -> None:
    with pytest.raises(SpecError) as refused:
        specs.load_local("staging", _with(tmp_path, "staging", path, value))
    assert named in str(refused.value) and advice in str(refused.value)


def test_the_shipped_local_stacks_and_the_settings_the_local_target_reads_still_load(tmp_path: Path) -> None:
    for stack in ("staging", "prod"):
        assert specs.load_local(stack, SHIPPED).image is None
    loaded = specs.load_local("staging", _with(tmp_path, "staging", ("endpoint", "scaler_type"), "QUEUE_DELAY"))
    assert loaded.endpoint.scaler_type == "QUEUE_DELAY"
