"""A Cloudflare account id the spec refuses is named by its rule, not by a regular expression."""

from __future__ import annotations

import copy

import pytest
from test_spec import DIGEST, local_doc

from goldgate import spec as specs
from goldgate.errors import SpecError


@pytest.mark.parametrize("account", ["0123456789ABCDEF0123456789ABCDEF", "0" * 31, "not-an-id"])
def test_a_bad_account_id_is_refused_by_its_rule(account: str) -> None:
    raw = copy.deepcopy(local_doc()["stacks"]["prod"])
    raw.pop("local")
    raw |= {"image": DIGEST, "cloud": {"cloudflare_account_id": account}}
    with pytest.raises(SpecError) as refused:
        specs.from_pulumi_config("prod", raw)
    message = str(refused.value)
    assert "is not a Cloudflare account id (32 lowercase hex digits, the dashboard's Account ID)" in message
    assert "^[" not in message
