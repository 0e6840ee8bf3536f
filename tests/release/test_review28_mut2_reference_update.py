"""`goldgate golden --update-references` leaves a reference of another size than the render as it was (a render
whose size changed is a change beyond the case's limits, however alike the two look at hash size), and says both
sizes: only `--accept-changed` replaces it. Nor is a reference that cannot be read as an image (a copy cut short, a
bad merge, a Git LFS pointer): the real reference may live elsewhere, so it too is replaced only when named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from release_support import StandInApi, invoke, standin_api
from test_promotion_evidence import Target

import goldgate.commands.release as release_commands
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = Target(api, {"staging": A, "prod": A})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: stacks)
        yield stacks


def _update(capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, *more: str) -> tuple[int, str, str]:
    return invoke(capsys, "golden", "staging", "--home", str(tmp_path / "home"), "--cases-dir", str(paths.cases_dir),
                  "--references-dir", str(paths.references_dir), "--reports-dir", str(paths.reports_dir),
                  "--update-references", *more)


def test_a_reference_of_another_size_is_not_replaced_unnamed(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                             paths: GoldenPaths, target: Target) -> None:
    square = paths.references_dir / "square.png"
    with Image.open(square) as img:
        width, height = img.size
        img.convert("RGB").resize((width * 2, height * 2), Image.Resampling.NEAREST).save(square)
    doubled = square.read_bytes()
    code, out, _err = _update(capsys, tmp_path, paths)
    assert code == 1, out
    assert square.read_bytes() == doubled
    assert "square.png left as it was" in out, out
    assert f", {width * 2}x{height * 2} where this render is {width}x{height} from this render" in out, out


def test_a_reference_that_cannot_be_read_is_replaced_only_when_named(capsys: pytest.CaptureFixture,
                                                                     tmp_path: Path, paths: GoldenPaths,
                                                                     target: Target) -> None:
    square = paths.references_dir / "square.png"
    square.write_bytes(b"not a png: cut short by a bad copy")
    code, out, err = _update(capsys, tmp_path, paths)
    assert code == 1, (out, err)
    assert square.read_bytes() == b"not a png: cut short by a bad copy"
    assert "square.png left as it was" in out and "--accept-changed square" in out, out
    code, out, err = _update(capsys, tmp_path, paths, "--case", "square", "--accept-changed", "square")
    assert code == 0, (out, err)
    with Image.open(square) as img:
        assert img.size[0] > 0
