"""`goldgate:cloudflareApiBase` under one rule (goldgate.spec.checked_cloudflare_api_base) for the Pulumi program and
the operations commands. A stack file value that YAML reads as false (`false`, `0`) is the text "false" or "0" to
the program's Pulumi config, which refuses it; the operations commands took it for "unset" and called Cloudflare's
own API, around the egress proxy the operator meant to name. A refusal says the token would travel in clear text
only when it would (plain http://), not for a query string or a user name in the URL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.commands.ops import stack_cloudflare_api_base
from goldgate.errors import GoldgateError, SpecError

KEY = "goldgate:cloudflareApiBase"


def _stacks(directory: Path, base: object) -> Path:
    doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())
    doc["config"][KEY] = base
    directory.mkdir()
    (directory / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return directory


@pytest.mark.parametrize("base", [False, 0], ids=["false", "zero"])
def test_a_value_yaml_reads_as_false_is_refused_not_taken_for_cloudflares_api(tmp_path, base):
    stacks = _stacks(tmp_path / "stacks", base)
    with pytest.raises(GoldgateError, match=f"{KEY} .*not an https:// URL") as refused:
        stack_cloudflare_api_base("staging", stacks)
    assert "pulumi up` refuses it too" in str(refused.value)
    # The program's reader (a Pulumi config value is text) refuses the same value.
    with pytest.raises(SpecError):
        specs.checked_cloudflare_api_base(str(base).lower(), "stack staging")


def test_unset_and_empty_are_cloudflares_own_api(tmp_path):
    assert stack_cloudflare_api_base("staging", _stacks(tmp_path / "a", "")) == specs.CLOUDFLARE_API
    assert specs.checked_cloudflare_api_base(None, "stack staging") == specs.CLOUDFLARE_API


@pytest.mark.parametrize(("base", "clear"), [
    ("http://cf-egress.example.com/client/v4", True),
    ("https://cf-egress.example.com/client/v4?via=proxy", False),
    ("https://cf-egress.example.com:99999/client/v4", False),
], ids=["plain-http", "query", "port"])
def test_the_refusal_says_clear_text_only_for_plain_http(base, clear):
    with pytest.raises(SpecError) as refused:
        specs.checked_cloudflare_api_base(base, "stack staging")
    assert ("would travel in clear text" in str(refused.value)) is clear, refused.value
