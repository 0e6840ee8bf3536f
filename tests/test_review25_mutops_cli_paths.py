"""`demo --out` and `metrics --html` name a path the command creates: a blank one is refused in the parser,
naming the option, before any stack starts (goldgate/commands/__init__.py, path_to_create)."""

from __future__ import annotations

import pytest
from test_review24_clifuzz_refusals import run


@pytest.mark.parametrize("out", ["", "   "])
def test_demo_out_blank_is_refused_before_any_stack_starts(tmp_path, monkeypatch, capsys, out) -> None:
    from goldgate.commands import local

    def no_stack(*args: object, **kwargs: object) -> None:
        raise AssertionError("demo began to bring a stack up")

    monkeypatch.setattr(local, "ensure_up", no_stack)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "demo-home"
    assert run(["demo", "--home", str(home), "--out", out]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        "goldgate demo: error: argument --out: is empty or blank; give a value"
    assert not home.exists()
