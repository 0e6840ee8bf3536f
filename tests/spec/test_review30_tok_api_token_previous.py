"""goldgate:apiTokenPrevious (set while the API token is rotated) is a stack file key like goldgate:webhookSecretPrevious:
encrypted, every goldgate command that reads the stack file takes it; written in plain text (`pulumi config set`
without `--secret`), it is refused by name, never by value, before `pulumi up` is reached. Before, the key was unknown:
a stack file holding it was refused whole, so the API token could not be rotated without downtime."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

OLD = "api-token-the-old-one-3b8d0e6f"
DIGEST = "registry.example/goldgate/worker@sha256:" + "b" * 64


def _stack_dir(tmp_path: Path, value: object) -> Path:
    doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.prod.yaml").read_text())
    doc["config"]["goldgate:spec"]["image"] = DIGEST
    doc["config"]["goldgate:apiTokenPrevious"] = value
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def test_a_previous_api_token_in_plain_text_is_refused_naming_the_key_only(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        specs.load_pulumi("prod", _stack_dir(tmp_path, OLD))
    said = str(err.value)
    assert said.startswith(f"{tmp_path / 'Pulumi.prod.yaml'}: goldgate:apiTokenPrevious is stored in plain text")
    assert "pulumi config set --secret goldgate:apiTokenPrevious --stack prod" in said
    assert OLD not in said


@pytest.mark.parametrize("value", [{"secure": "v1:AAAABBBBCCCC"}, None, ""])
def test_an_encrypted_or_unset_previous_api_token_loads(tmp_path: Path, value: object) -> None:
    assert specs.load_pulumi("prod", _stack_dir(tmp_path, value)).name == "prod"
