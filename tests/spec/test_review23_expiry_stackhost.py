"""The local stack host tells its service the stack's storage.result_ttl_days (service.json), as the Pulumi
program tells the Worker (RESULT_TTL_DAYS): the service's 404 result_missing says from it whether a result
expired or was lost in the bucket."""

from __future__ import annotations

from pathlib import Path

import yaml
from test_review17_admit_spec import host_service_config

from goldgate import spec as specs
from service.config import ServiceConfig


def test_the_local_stack_host_gives_its_service_the_stacks_result_ttl_days(tmp_path: Path) -> None:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"].setdefault("storage", {})["result_ttl_days"] = 9
    stacks_file = tmp_path / "local.yaml"
    stacks_file.write_text(yaml.safe_dump(doc))
    config = host_service_config(tmp_path / "home", stacks_file)
    assert config["result_ttl_days"] == 9
    assert ServiceConfig.from_mapping(config).result_ttl_days == 9
