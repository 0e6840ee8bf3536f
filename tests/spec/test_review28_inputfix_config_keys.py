"""A `goldgate:` key of a stack file that nothing reads is refused, naming it and the key it is nearest to, never
its value. Before, `goldgate:runpodApikey: <key in plain text>` (one letter's case off) loaded: the plain-text check
looked only at the exact names, so the credential sat in the committed file, unread, and `pulumi up` went on
without the key the operator thought they had set. Keys of other namespaces (`runpod:`, `aws:`) are not goldgate's:
they load as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

SECRET = "rpa_PLAINTEXT0123456789abcdefTYPO"
DIGEST = "registry.example/goldgate/worker@sha256:" + "a" * 64


def stack_dir(tmp_path: Path, stack: str = "staging", **config: object) -> Path:
    doc = yaml.safe_load((specs.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())
    doc["config"]["goldgate:spec"]["image"] = DIGEST
    doc["config"].update(config)
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def refusal(tmp_path: Path, stack: str = "staging", **config: object) -> str:
    with pytest.raises(SpecError) as err:
        specs.load_pulumi(stack, stack_dir(tmp_path, stack, **config))
    return str(err.value)


def test_the_reviewers_three_keys_are_refused_each_with_its_nearest_name_and_no_value(tmp_path: Path) -> None:
    message = refusal(tmp_path, **{"goldgate:runpodApikey": SECRET, "goldgate:ApiToken": "tok-" + SECRET,
                                   "goldgate:bogusKey": 1})
    assert message.startswith(f"{tmp_path / 'Pulumi.staging.yaml'}: goldgate:"), message
    for named in ("goldgate:runpodApikey (did you mean goldgate:runpodApiKey?)",
                  "goldgate:ApiToken (did you mean goldgate:apiToken?)", "goldgate:bogusKey"):
        assert named in message.partition(" are not keys of goldgate's stack config")[0], (named, message)
    assert SECRET not in message and "PLAINTEXT" not in message
    # the two plain values are named as perhaps credentials; the number is a value too, but not said to be one
    assert "goldgate:ApiToken, goldgate:runpodApikey hold a value in plain text" in message  # the file's order
    assert "rotate it" in message
    # bogusKey is near no key: the known ones are listed
    assert "goldgate:bogusKey (did" not in message and "goldgate's keys: spec, cloudflareApiBase" in message


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize(("key", "meant"), [
    ("goldgate:webhooksecret", "webhookSecret"),
    ("goldgate:cloudflareApiBse", "cloudflareApiBase"),
    ("goldgate:registryPasword", "registryPassword"),
    ("goldgate:webhookSecretPrev", "webhookSecretPrevious"),
    ("goldgate:config:apitoken", "apiToken"),  # Pulumi's long form of goldgate:apitoken
    ("runpodApiKeys", "runpodApiKey"),  # no namespace: Pulumi puts it in the project's, goldgate
])
def test_a_near_miss_names_the_key_it_was_meant_to_be(tmp_path: Path, stack: str, key: str, meant: str) -> None:
    message = refusal(tmp_path, stack, **{key: {"secure": "v1:abc"}})
    assert f"{key} (did you mean goldgate:{meant}?) is not a key of goldgate's stack config" in message, message
    assert "plain text" not in message  # an encrypted value is not exposed
    assert f"pulumi config rm <key> --stack {stack}" in message


def test_a_secret_under_the_long_or_bare_form_of_its_name_is_still_checked_for_plain_text(tmp_path: Path) -> None:
    for key in ("goldgate:config:runpodApiKey", "runpodApiKey"):
        message = refusal(tmp_path, **{key: SECRET})
        assert "goldgate:runpodApiKey is stored in plain text" in message, message
        assert SECRET not in message


def test_a_key_with_an_odd_name_is_shown_bounded(tmp_path: Path) -> None:
    key = "goldgate:" + "x" * 5000 + "\x1b[31m"
    message = refusal(tmp_path, **{key: 1})
    assert len(message) < 1500 and "\x1b" not in message, message


def test_keys_of_other_namespaces_are_left_to_their_readers(tmp_path: Path) -> None:
    loaded = specs.load_pulumi("staging", stack_dir(tmp_path, **{
        "runpod:apiKey": {"secure": "v1:abc"}, "cloudflare:apiToken": {"secure": "v1:def"}, "aws:region": "eu-west-1",
        "goldgategpu:thing": 1}))
    assert loaded.name == "staging" and loaded.image == DIGEST


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_key_goldgate_reads_loads(tmp_path: Path, stack: str) -> None:
    encrypted = {f"goldgate:{key}": {"secure": f"v1:{key}"} for key in specs.SECRET_CONFIG_KEYS}
    loaded = specs.load_pulumi(stack, stack_dir(tmp_path, stack, **encrypted, **{
        "goldgate:cloudflareApiBase": "https://api.cloudflare.com/client/v4",
        "goldgate:r2WritePermissionGroupId": "a" * 32, "goldgate:r2ReadPermissionGroupId": "b" * 32}))
    assert loaded.name == stack


def test_every_shipped_stack_file_loads() -> None:
    shipped = sorted(specs.STACKS_DIR.glob("Pulumi.*.yaml"))
    assert len(shipped) >= 2
    for path in shipped:
        name = path.name.split(".")[1]
        assert specs.load_pulumi(name).name == name
