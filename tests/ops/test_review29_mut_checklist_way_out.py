"""Review 29 (mut): the checklist's error_rate line, when jobs RunPod forgot (a host restart) failed it, gives the
way out for the stack's own target: on a cloud stack with `--target cloud` in the deploy and the golden run it gives
on STAGING and in the promotion it gives on PROD (without it, each command acts on the local target)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from goldgate.ops.checklist import _forgotten_way_out

A = "registry.example/goldgate/worker@sha256:" + "a" * 64


@pytest.mark.parametrize(("target", "on"), [("cloud", " --target cloud"), ("local", "")])
def test_the_checklists_way_out_of_forgotten_jobs_names_the_stacks_target(target: str, on: str) -> None:
    staging = SimpleNamespace(target=target, stack="staging", specs={}, images={"staging": A})
    words = _forgotten_way_out(staging, A, 2)
    assert words.startswith("2 of the failed jobs were recovered as forgotten by RunPod"), words
    assert f"`goldgate deploy staging{on} --image {A}`, then `goldgate golden staging{on}`" in words, words
    prod = SimpleNamespace(target=target, stack="prod", specs={}, images={"prod": A})
    assert f"`goldgate promote{on} --image {A}`" in _forgotten_way_out(prod, A, 1)
