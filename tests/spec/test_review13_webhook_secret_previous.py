"""goldgate:webhookSecretPrevious (set while the webhook secret is rotated) and goldgate:apiTokenPrevious (while the
API token is) are credentials like the others: encrypted, every goldgate command that reads the stack file takes
them; written into stacks/Pulumi.<stack>.yaml in plain text (`pulumi config set` without `--secret`), each is refused
by name, never by value, before `pulumi up` is reached. Before review 30, goldgate:apiTokenPrevious was an unknown key:
a stack file holding it was refused whole, so the API token could not be rotated without downtime."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

# Each rotated secret's key, and an old value of it.
PREVIOUS = {"goldgate:webhookSecretPrevious": "whsec-the-old-one-5e2b7c0d9f31",
            "goldgate:apiTokenPrevious": "api-token-the-old-one-3b8d0e6f"}
DIGEST = "registry.example/goldgate/worker@sha256:" + "b" * 64


def _stack_dir(tmp_path: Path, key: str, value: object) -> Path:
    doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.prod.yaml").read_text())
    doc["config"]["goldgate:spec"]["image"] = DIGEST
    doc["config"][key] = value
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


@pytest.mark.parametrize("key", PREVIOUS)
def test_a_previous_secret_in_plain_text_is_refused_naming_the_key_only(tmp_path: Path, key: str) -> None:
    old = PREVIOUS[key]
    with pytest.raises(SpecError) as err:
        specs.load_pulumi("prod", _stack_dir(tmp_path, key, old))
    said = str(err.value)
    assert said.startswith(f"{tmp_path / 'Pulumi.prod.yaml'}: {key} is stored in plain text")
    assert f"pulumi config set --secret {key} --stack prod" in said
    assert old not in said


@pytest.mark.parametrize("key", PREVIOUS)
@pytest.mark.parametrize("value", [{"secure": "v1:AAAABBBBCCCC"}, None, ""])
def test_an_encrypted_or_unset_previous_secret_loads(tmp_path: Path, key: str, value: object) -> None:
    assert specs.load_pulumi("prod", _stack_dir(tmp_path, key, value)).name == "prod"
