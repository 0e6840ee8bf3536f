"""The commented settings under each local stack's `api` in stacks/local.yaml are what an operator uncomments: each,
uncommented as written, must load and set its field. They read `# api.client_daily_spend_limit_usd: 50` before,
which uncommented is refused ("unknown field(s) api.client_daily_spend_limit_usd"), as an on-call drill found."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from goldgate import spec as specs

_HINT = re.compile(r"^(?P<indent>[ ]+)# (?P<key>rate_limits|daily_spend_limit_usd|client_daily_spend_limit_usd): "
                   r"(?P<value>[^#]+?)\s+#.*$", re.MULTILINE)


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("key", ["rate_limits", "daily_spend_limit_usd", "client_daily_spend_limit_usd"])
def test_each_api_hint_uncommented_as_written_loads_and_sets_its_field(tmp_path: Path, stack: str, key: str) -> None:
    text = specs.LOCAL_STACKS_FILE.read_text()
    section = text.index(f"  {stack}:\n")
    hint = next((m for m in _HINT.finditer(text, section) if m["key"] == key), None)
    assert hint is not None, f"stacks/local.yaml has no commented {key} under stacks.{stack}.api"
    path = tmp_path / "local.yaml"
    path.write_text(text[:hint.start()] + f"{hint['indent']}{key}: {hint['value']}" + text[hint.end():])
    api = specs.load_local(stack, path).api
    if key == "rate_limits":
        assert (api.rate_limits.create_per_minute, api.rate_limits.inputs_per_minute) == (600, 600)
    else:
        assert getattr(api, key) == float(hint["value"])
