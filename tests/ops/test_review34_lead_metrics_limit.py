"""`goldgate metrics` judges today's spend by the daily spend limit creates are refused by: a running local stack's
service's (its service.json), not the stacks file's, which an edit changes before any `down` and `up` applies it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from goldgate.commands import ops
from goldgate.errors import SpecError
from goldgate.local.state import StackDir
from goldgate.ops.metrics_report import daily_spend_line


class _Platform:
    def __init__(self, home: Path, running: bool, file_limit: float | None, file_readable: bool = True) -> None:
        self.home, self.running, self.file_limit, self.file_readable = home, running, file_limit, file_readable

    def running_host(self, stack: str) -> object | None:
        return object() if self.running else None

    def spec(self, stack: str) -> SimpleNamespace:
        if not self.file_readable:
            raise SpecError("stacks/local.yaml: line 3: not YAML")
        return SimpleNamespace(api=SimpleNamespace(daily_spend_limit_usd=self.file_limit))


def _served(home: Path, config: dict | str) -> None:
    root = StackDir(home, "staging").root
    root.mkdir(parents=True, exist_ok=True)
    (root / "service.json").write_text(config if isinstance(config, str) else json.dumps(config))


def _line(platform: _Platform) -> str:
    report = {"daily_spend": {"day": "2026-12-02", "spend_usd": 6.0, "jobs": 1, "limit_usd": None}}
    ops._with_spend_limit(report, lambda: ops._local_spend_limit(platform, "staging"))
    return daily_spend_line(report)


def test_a_running_stack_is_judged_by_the_limit_its_service_enforces(tmp_path: Path) -> None:
    _served(tmp_path, {"stack": "staging", "daily_spend_limit_usd": 5})
    # the stacks file was raised to 100 and not applied: clients are still refused at 5
    line = _line(_Platform(tmp_path, running=True, file_limit=100.0))
    assert "daily spend limit $5 (api.daily_spend_limit_usd): REACHED" in line, line
    assert "spend $6 over 1 job ended" in line, line


def test_a_running_stack_without_a_limit_is_not_judged_by_an_unapplied_one(tmp_path: Path) -> None:
    _served(tmp_path, {"stack": "staging"})
    line = _line(_Platform(tmp_path, running=True, file_limit=0.5))
    assert "no daily spend limit" in line and "REACHED" not in line, line


def test_a_stopped_stack_is_judged_by_the_stacks_file(tmp_path: Path) -> None:
    _served(tmp_path, {"stack": "staging", "daily_spend_limit_usd": 5})  # left by the last run
    line = _line(_Platform(tmp_path, running=False, file_limit=100.0))
    assert "daily spend limit $100.00" in line and "REACHED" not in line, line


@pytest.mark.parametrize("config", ["{not json", {"stack": "staging", "daily_spend_limit_usd": "5"},
                                    {"stack": "staging", "daily_spend_limit_usd": True}])
def test_a_limit_that_cannot_be_read_is_unknown_not_none(tmp_path: Path, config: dict | str) -> None:
    _served(tmp_path, config)
    line = _line(_Platform(tmp_path, running=True, file_limit=None))
    assert "daily spend limit unknown" in line and "no daily spend limit" not in line, line


def test_an_unreadable_stacks_file_of_a_stopped_stack_is_unknown(tmp_path: Path) -> None:
    line = _line(_Platform(tmp_path, running=False, file_limit=None, file_readable=False))
    assert "daily spend limit unknown" in line, line
