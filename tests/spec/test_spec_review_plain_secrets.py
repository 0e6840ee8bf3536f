"""A credential written into stacks/Pulumi.<stack>.yaml in plain text (`pulumi config set` without `--secret`, or
an edit by hand) is refused by every goldgate command that reads the stack file, naming the key and never the
value; infra refuses it too, but only at `pulumi up`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

TOKEN = "plain-Token-0f3c9a7e55d1b2c4"
DIGEST = "registry.example/goldgate/worker@sha256:" + "a" * 64


def stack_dir(tmp_path: Path, **config: object) -> Path:
    doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())
    doc["config"]["goldgate:spec"]["image"] = DIGEST
    doc["config"].update(config)
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


@pytest.mark.parametrize("key", ["runpodApiKey", "webhookSecret", "apiToken", "cloudflareApiToken",
                                 "registryUsername", "registryPassword"])
@pytest.mark.parametrize("value", [TOKEN, {"value": TOKEN}, 1234567890123])
def test_a_credential_in_plain_text_is_refused_naming_the_key_only(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(SpecError) as err:
        specs.load_pulumi("staging", stack_dir(tmp_path, **{f"goldgate:{key}": value}))
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'Pulumi.staging.yaml'}: goldgate:{key} is stored in plain text")
    assert f"pulumi config set --secret goldgate:{key} --stack staging" in message
    assert TOKEN not in message and "1234567890123" not in message


def test_every_plain_credential_is_named_at_once(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="goldgate:webhookSecret, goldgate:apiToken are stored in plain text"):
        specs.load_pulumi("staging", stack_dir(tmp_path, **{"goldgate:apiToken": TOKEN,
                                                             "goldgate:webhookSecret": TOKEN + "x"}))


@pytest.mark.parametrize("value", [{"secure": "v1:AAAABBBBCCCC"}, None, ""])
def test_an_encrypted_or_unset_credential_loads(tmp_path: Path, value: object) -> None:
    spec = specs.load_pulumi("staging", stack_dir(tmp_path, **{"goldgate:registryPassword": value}))
    assert spec.name == "staging"


def test_the_shipped_stack_files_hold_no_plain_credentials() -> None:
    for stack in ("staging", "prod"):
        assert specs.load_pulumi(stack).name == stack
