"""endpoint.gpu_pools holds RunPod serverless pool ids (GET /v2/catalog/gpus `pool`: ADA_24, AMPERE_80, ADA_48_PRO).
A GPU type id there (the card's name, "NVIDIA GeForce RTX 4090", as endpoint.cost_gpu_type and older RunPod APIs
take it) loaded, and reached RunPod only at the first `pulumi up`, after Cloudflare's bucket, database and Worker
were made: the stack file is refused on load, naming the field, the value and where each kind of id belongs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64


def stack_file(tmp_path: Path, pools: list[str], stack: str = "staging") -> Path:
    doc = yaml.safe_load((specs.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["config"]["goldgate:spec"]["image"] = DIGEST
    doc["config"]["goldgate:spec"]["endpoint"]["gpu_pools"] = pools
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


@pytest.mark.parametrize("pool", ["NVIDIA GeForce RTX 4090", "ada_24", "ADA 24", "ADA-24", "_ADA"])
def test_a_gpu_pools_entry_that_is_no_pool_id_is_refused_on_load_naming_the_field(tmp_path, pool):
    directory = stack_file(tmp_path, ["ADA_24", pool])
    with pytest.raises(SpecError) as err:
        specs.load_pulumi("staging", directory)
    message = str(err.value)
    assert f"goldgate:spec.endpoint.gpu_pools: {pool!r} is not a RunPod GPU pool id" in message, message
    assert "e.g. ADA_24" in message and "endpoint.cost_gpu_type" in message, message


@pytest.mark.parametrize("pools", [["ADA_24"], ["AMPERE_16", "AMPERE_24"], ["ADA_48_PRO", "ADA_80_PRO"],
                                   ["HOPPER_141"], ["AMPERE_80"]])
def test_runpod_pool_ids_load(tmp_path, pools):
    spec = specs.load_pulumi("staging", stack_file(tmp_path, pools))
    assert spec.endpoint.gpu_pools == tuple(pools)


def test_the_shipped_stack_files_name_pools():
    for stack in ("staging", "prod"):
        assert specs.load_pulumi(stack).endpoint.gpu_pools == ("ADA_24",)
    for stack in specs.local_stack_names():
        assert specs.load_local(stack).endpoint.gpu_pools == ("ADA_24",)
