"""The production checklist's `custom_nodes_locked` line: a custom node whose Python dependencies are not hash-locked
(its entry in images/worker/custom_nodes.yaml names no `requirements:`, so the image installs the node's own
requirements.txt unpinned) fails PROD on the cloud, naming the entry and the command that makes its lock, as an
unpinned model in models.yaml does; elsewhere it is a warning. A node with a lock, or with `requirements: none`, passes.
Before, the checklist had no such line: a PROD release could run dependencies no hash checked."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import yaml

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import WORKER_DIR, Facts, read_custom_node_locks

IMAGE = "registry.example.invalid/goldgate-worker@sha256:" + "c" * 64


def _facts(tmp_path: Path, stack: str, target: str, *entries: dict) -> Facts:
    path = tmp_path / "custom_nodes.yaml"
    path.write_text(yaml.safe_dump({"schema": 1, "custom_nodes": list(entries)}))
    return Facts(stack=stack, now=datetime.now(UTC), target=target, images={stack: IMAGE},
                 custom_node_locks=read_custom_node_locks(path))


def _line(facts: Facts) -> checklist.CheckResult:
    return next(r for r in checklist.run_checks(facts) if r.id == "custom_nodes_locked")


UNLOCKED = {"url": "https://example.invalid/team/was-nodes.git", "commit": "a" * 40, "name": "was-nodes"}


def test_an_unlocked_custom_node_fails_cloud_prod_naming_the_entry_and_the_lock_command(tmp_path):
    line = _line(_facts(tmp_path, "prod", "cloud", UNLOCKED))
    assert line.status == checklist.FAIL
    assert "was-nodes (https://example.invalid/team/was-nodes.git at aaaaaaaaaaaa)" in line.evidence
    assert ("`pip-compile --generate-hashes --output-file images/worker/custom_nodes/was-nodes.txt requirements.txt` "
            f"in a clone of https://example.invalid/team/was-nodes.git at {'a' * 40}") in line.evidence
    assert "requirements: custom_nodes/was-nodes.txt" in line.evidence and "requirements: none" in line.evidence


def test_an_unlocked_custom_node_is_a_warning_on_staging_and_on_a_local_prod(tmp_path):
    for stack, target in (("staging", "cloud"), ("prod", "local")):
        line = _line(_facts(tmp_path, stack, target, UNLOCKED))
        assert line.status == checklist.WARN, (stack, target)
        assert "was-nodes" in line.evidence and "pip-compile --generate-hashes" in line.evidence


def test_a_locked_node_and_one_without_requirements_pass_cloud_prod(tmp_path):
    (tmp_path / "custom_nodes").mkdir()
    (tmp_path / "custom_nodes" / "was-nodes.txt").write_text(f"numpy==2.1.0 \\\n    --hash=sha256:{'b' * 64}\n")
    line = _line(_facts(tmp_path, "prod", "cloud", {**UNLOCKED, "requirements": "custom_nodes/was-nodes.txt"},
                        {"url": "https://example.invalid/team/tiny.git", "commit": "b" * 40, "requirements": "none"}))
    assert line.status == checklist.PASS, line.evidence
    assert "1 install a lock of images/worker/custom_nodes/ (was-nodes), 1 have none (tiny)" in line.evidence


def test_a_lock_that_does_not_load_fails_the_line_with_the_loaders_words(tmp_path):
    (tmp_path / "custom_nodes").mkdir()
    (tmp_path / "custom_nodes" / "was-nodes.txt").write_text("numpy==2.1.0\n")   # no hash
    line = _line(_facts(tmp_path, "staging", "local", {**UNLOCKED, "requirements": "custom_nodes/was-nodes.txt"}))
    assert line.status == checklist.FAIL
    assert "(was-nodes).requirements" in line.evidence and "without a hash" in line.evidence


def test_the_shipped_checkout_passes_and_its_facts_are_read_without_being_named(tmp_path):
    # The cloud gatherer builds Facts without naming this fact: it is read from the checkout all the same.
    facts = Facts(stack="prod", now=datetime.now(UTC), target="cloud", images={"prod": IMAGE})
    assert facts.custom_node_locks.path == str(WORKER_DIR / "custom_nodes.yaml")
    assert _line(facts).status == checklist.PASS
    unlocked = dataclasses.replace(facts, custom_node_locks=_facts(tmp_path, "prod", "cloud", UNLOCKED).custom_node_locks)
    assert _line(unlocked).status == checklist.FAIL
