"""A local stack's api.daily_spend_limit_usd reaches the service `goldgate up` starts; a stack without one gives the
service no limit."""

from __future__ import annotations

from pathlib import Path

from stackfiles import stacks_file
from test_review32_fixspec_input_limits_local import _host_config, _with_api  # STAGING's api block set

from service.config import ServiceConfig


def test_the_stack_host_gives_its_service_the_stacks_daily_spend_limit(home: Path) -> None:
    config = _host_config(home, _with_api(home, daily_spend_limit_usd=42.5))
    assert ServiceConfig.from_mapping(config).daily_spend_limit_usd == 42.5
    default = _host_config(home, stacks_file(home))
    assert ServiceConfig.from_mapping(default).daily_spend_limit_usd is None
