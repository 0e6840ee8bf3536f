"""Review 30 (wfa): a workflow author walking "To add a case" met two silent golden runs.

- A case whose render no longer matched its reference failed with the numbers alone (`dHash distance 36 to
  flux-plain.png (max 8)`): nothing said to look at the render, nor the command that replaces the reference when the
  change is intended (it was printed only by a run with --update-references).
- `--update-references` run while STAGING still ran an earlier build (the workflow edited since, not built and
  deployed) wrote that build's renders as the new references, said nothing, and the checkout's own build then failed
  them. On the local target the image's digest is the images/worker tree's: the run now says so before it writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from release_support import StandInApi, invoke, standin_api
from test_promotion_evidence import Target

import goldgate.commands.release as release_commands
from goldgate.local.image_store import REF_PREFIX, snapshot_digest
from goldgate.release.report_html import render
from goldgate.release.verification import GoldenPaths

WORKER_SOURCE = Path(__file__).resolve().parents[2] / "images" / "worker"  # what `goldgate build` snapshots
EARLIER = REF_PREFIX + "e" * 64  # a build of the worker from before the checkout's last edit


def _stacks(monkeypatch: pytest.MonkeyPatch, image: str) -> Iterator[Target]:
    with standin_api(StandInApi(image_tag=image)) as api:
        stacks = Target(api, {"staging": image, "prod": image})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: stacks)
        yield stacks


@pytest.fixture
def checkouts_build(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    yield from _stacks(monkeypatch, REF_PREFIX + snapshot_digest(WORKER_SOURCE))


def _golden(capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, *more: str) -> tuple[int, str, str]:
    return invoke(capsys, "golden", "staging", "--home", str(tmp_path / "home"), "--cases-dir", str(paths.cases_dir),
                  "--references-dir", str(paths.references_dir), "--reports-dir", str(paths.reports_dir), *more)


def _repaint(reference: Path) -> None:
    """The reference replaced by another picture of the same size (what an intended change of a default looks like
    to the comparison)."""
    with Image.open(reference) as img:
        size = img.size
    Image.new("RGB", size, (250, 250, 250)).save(reference)


def test_a_render_unlike_its_reference_says_what_to_look_at_and_how_to_replace_it(
        capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, checkouts_build: Target) -> None:
    _repaint(paths.references_dir / "square.png")
    code, out, err = _golden(capsys, tmp_path, paths)
    assert code == 1, (out, err)
    failures = [line for line in out.splitlines() if "failure: square:" in line]
    assert failures, out
    # said once per case (on its first failed comparison), not on each of them
    [advised] = [line for line in failures if "look at this render" in line]
    assert "look at this render and square.png (the run's HTML page)" in advised, advised
    assert "if the change is intended, replace the reference with `goldgate golden staging --update-references" \
        in advised and "--case square --accept-changed square" in advised, advised
    # ... and the run's page shows both, which it did not: it had their numbers only, and the render's own URL needs
    # the API's token. Only the case that failed its comparison carries them (the page of a passing run stays small).
    page = (paths.reports_dir / "latest.html").read_text()
    assert page.count('<img src="data:image/jpeg;base64,') == 2, page[-2000:]
    assert 'alt="this render"' in page and 'alt="reference square.png"' in page
    # A smoke run (PROD's, after a promotion) never advises replacing the reference STAGING's render passed
    code, out, err = _golden(capsys, tmp_path, paths, "--smoke")
    assert code == 1 and "failure: square:" in out, (out, err)
    assert "look at this render" not in out and "--accept-changed" not in out, out


def test_references_made_on_an_earlier_build_than_the_checkouts_are_said_to_be_its(
        capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    built = REF_PREFIX + snapshot_digest(WORKER_SOURCE)
    for image in (EARLIER, built):
        (paths.references_dir / "square.png").unlink()
        for _stack in _stacks(monkeypatch, image):
            code, out, err = _golden(capsys, tmp_path, paths, "--update-references", "--case", "square")
        assert code == 0, (out, err)
        assert "wrote square.png (a new reference: there was none)" in err, err
        if image == built:  # made on the checkout's own build: nothing to say
            assert "warning:" not in err and "not this checkout's build" not in err, err
            continue
        assert f"warning: staging runs {EARLIER}, but this checkout's images/worker builds {built}" in err, err
        assert f"`goldgate deploy staging --image {built}`" in err, err
        assert "wrote square.png (a new reference: there was none); a render of staging's image, which is not " \
               "this checkout's build" in err, err


def test_the_page_shows_only_previews_that_are_inline_jpeg_data() -> None:
    # A report is read from disk: what its previews hold must not point the page anywhere else.
    good = "data:image/jpeg;base64,/9j/4AAQSkZJRg=="
    case = {"id": "c", "workflow_id": "w", "passed": False, "checks": [], "images": [
        {"reference": "c.png", "render_preview": good,
         "reference_preview": 'data:image/jpeg;base64,x" onerror="alert(1)'},
        {"reference": "d.png", "render_preview": "https://elsewhere.example/x.jpg", "reference_preview": None}]}
    page = render({"stack": "staging", "passed": False, "cases": [case]})
    assert f'<img src="{good}" alt="this render">' in page, page
    assert page.count("<img ") == 1 and "onerror" not in page and "elsewhere.example" not in page, page
