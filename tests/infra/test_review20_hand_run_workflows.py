"""A `pulumi up` run by hand (GOLDGATE_WORKFLOWS_DIR not set at all: goldgate's deployer always sets it) bundles the
checkout's workflows, unless goldgate's ledger records that the image the stack pins was built with other ones: then
the program refuses, naming the build's commit and the ways out (docs/RUNBOOK.md, "A pulumi up of your own")."""

from __future__ import annotations

import pytest
from infra_harness import filled_stack_file, use_cloud

from goldgate.release.build import workflows_sha256
from goldgate.release.deployers.image_workflows import WORKFLOWS_ENV
from goldgate.release.ledger import Ledger
from infra.program import read_config
from infra.worker_bundle import WORKFLOWS_DIR, BundleError

COMMIT = "3e1d" + "0" * 36


@pytest.fixture
def prod(tmp_path, monkeypatch):
    """PROD's spec under Pulumi's mocks, a state home of the test's own, and no GOLDGATE_WORKFLOWS_DIR."""
    doc = filled_stack_file("prod")["config"]["goldgate:spec"]
    use_cloud("prod", doc)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("GOLDGATE_HOME", str(home))
    monkeypatch.delenv(WORKFLOWS_ENV, raising=False)
    monkeypatch.delenv("GOLDGATE_LEDGER_KEY", raising=False)
    return doc["image"], home


def _built(home, image, sha, key=None):
    Ledger(home, key=key).append("build", image=image, workflows_sha256=sha, git_commit=COMMIT, target="docker")


def test_a_hand_run_for_an_image_built_with_other_workflows_is_refused_naming_its_commit(prod):
    image, home = prod
    _built(home, image, "9f2c" + "a" * 60)
    with pytest.raises(BundleError) as refused:
        read_config("prod")
    text = str(refused.value)
    assert f"{image} was built with other workflows than this checkout's images/worker/workflows" in text
    assert f"commit {COMMIT}" in text and "sha256 9f2caaaaaaaa" in text and "ledger #1" in text
    assert f"{WORKFLOWS_ENV}=<dir> pulumi up" in text and "git checkout" in text


def test_a_hand_run_for_an_image_built_with_the_checkouts_workflows_bundles_them(prod):
    image, home = prod
    _built(home, image, "9f2c" + "a" * 60)   # an earlier build of the same image, from other workflows: not this one
    _built(home, image, workflows_sha256(WORKFLOWS_DIR))
    assert read_config("prod")[2].workflows_dir == WORKFLOWS_DIR


def test_a_hand_run_with_no_record_of_the_image_bundles_the_checkouts(prod):
    image, home = prod
    assert read_config("prod")[2].workflows_dir == WORKFLOWS_DIR            # no ledger at all
    _built(home, image.replace("@sha256:", "-other@sha256:"), "9f2c" + "a" * 60)  # another image's build
    assert read_config("prod")[2].workflows_dir == WORKFLOWS_DIR


def test_a_build_signed_with_the_ledger_key_refuses_a_hand_run_that_has_no_key(prod):
    image, home = prod
    _built(home, image, "9f2c" + "a" * 60, key=b"k" * 32)   # CI's entries carry a MAC; a laptop has no key
    with pytest.raises(BundleError, match=f"commit {COMMIT}"):
        read_config("prod")


def test_goldgates_own_deploy_is_not_second_guessed(prod, monkeypatch):
    image, home = prod
    _built(home, image, "9f2c" + "a" * 60)
    monkeypatch.setenv(WORKFLOWS_ENV, "")   # the deployer found no record, or this checkout's match: it says so
    assert read_config("prod")[2].workflows_dir == WORKFLOWS_DIR


def test_an_unreadable_ledger_refuses_a_hand_run_naming_it(prod):
    image, home = prod
    _built(home, image, workflows_sha256(WORKFLOWS_DIR))
    path = home / "ledger.jsonl"
    path.write_text(path.read_text().replace('"docker"', '"local"'))   # an edited line: the chain no longer verifies
    with pytest.raises(BundleError, match=r"the ledger .*ledger\.jsonl cannot be read"):
        read_config("prod")


def test_a_home_that_is_a_file_refuses_a_hand_run_naming_the_ledger(prod, tmp_path, monkeypatch):
    home = tmp_path / "a-file"
    home.write_text("not a state dir\n")
    monkeypatch.setenv("GOLDGATE_HOME", str(home))
    with pytest.raises(BundleError, match=r"the ledger .*a-file/ledger\.jsonl cannot be read \(Not a directory\)"):
        read_config("prod")
