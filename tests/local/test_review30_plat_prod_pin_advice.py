"""Review 30 (plat): a damaged pin.json of a local PROD is refused with the way out that works on PROD.

The refusal read "it named the image stack prod runs ... `goldgate deploy prod --image <ref>` (STAGING) or `goldgate
rollback --to <ref>` (PROD)": a `deploy prod` PROD refuses, named first for the very stack that cannot take it. PROD
takes an image only through promote and rollback; a `rollback --to` the release it ran, with the pin moved aside,
pins it again (on a PROD brought up on no image)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prod_status_support import promoted

from goldgate.local import image_store
from goldgate.local.platform import REPO, LocalPlatform
from goldgate.local.state import StackDir
from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger


def _goldgate(home: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "goldgate.cli", *argv, "--home", str(home)], check=False,
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def _error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done
    return done.stderr.strip().splitlines()[-1]


def test_an_empty_prod_pin_advises_rollback_to_which_pins_it_again(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    image = image_store.build_local_image(REPO / "images" / "worker", home)
    promoted(Ledger(home), image)                        # a release verified on PROD: `rollback --to` may pin it
    d = StackDir(home, "prod")
    d.ensure()
    d.pin_file.write_text("")                            # a power cut after the rename, PROD down
    advice = _error(_goldgate(home, "status", "prod"))
    assert advice.startswith(f"goldgate: error: {d.pin_file} is empty: it recorded the image prod runs. Move "
                             "pin.json aside (no command reads past it), then pin that image again with `goldgate "
                             "rollback --to <ref>` (PROD takes no `goldgate deploy`)"), advice
    assert "goldgate deploy prod" not in advice, advice
    assert advice.endswith("If it is down, `goldgate up prod` first (it starts on no image)"), advice
    assert _error(_goldgate(home, "up", "prod")) == advice

    d.pin_file.rename(d.root / "pin.json.empty")        # as advised: aside, up, then the rollback to the release
    try:
        up = _goldgate(home, "up", "prod")
        assert up.returncode == 0, up.stderr
        done = _goldgate(home, "rollback", "--to", image)
        assert done.returncode == 0, done.stderr
        assert d.pinned_image() == image
        status = LocalPlatform(home).status("prod")
        assert status.running and status.image == image and status.pin_not_served is None, status
    finally:
        LocalPlatform(home).down("prod")


def test_a_corrupt_staging_pin_advises_a_deploy_and_names_the_fault_once(home: Path) -> None:
    d = StackDir(home, "staging")
    d.ensure()
    d.pin_file.write_text('{"image": "local/worker\x01')  # a control character in a string
    advice = _error(_goldgate(home, "status", "staging"))
    assert f"{d.pin_file} is corrupt (Invalid control character at char 23): it recorded the image staging " \
           "runs." in advice, advice                 # it said "... character at at char 23"
    assert "then pin that image again with `goldgate deploy staging --image <ref>`: " in advice, advice
    assert "rollback" not in advice, advice
