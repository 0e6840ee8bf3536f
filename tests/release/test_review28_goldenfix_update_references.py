"""Review 28 (goldenfix): `goldgate golden staging --update-references` blessed a broken render by accident. After a
graph change, a new case without a reference was advised "create it deliberately with `goldgate golden staging
--update-references`", and that command rewrote every reference, one CHANGED beyond its case's limits too, with no
word from anyone: the next golden run and the promotion then passed. Now such a run writes only new references and
those within the case's limits; one that changed is replaced only for a case the operator names
(`--accept-changed`), a run of named cases (`--case`) makes a new case's reference alone, and the advice names that
very command. The summary counts what the run wrote (it said "references rewritten" of a run that wrote none)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from promotion_support import commands_on_stand_in
from release_support import invoke, render_png
from test_promotion_evidence import Target

from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64


def _inverted(path: Path) -> None:
    with Image.open(path) as img:
        ImageOps.invert(img.convert("RGB")).save(path)


def _golden(capsys: pytest.CaptureFixture, home: Path, paths: GoldenPaths, *extra: str) -> tuple[int, str, str]:
    return invoke(capsys, "golden", "staging", "--home", str(home), "--cases-dir", str(paths.cases_dir),
                  "--references-dir", str(paths.references_dir), "--reports-dir", str(paths.reports_dir), *extra)


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    with commands_on_stand_in(monkeypatch) as stacks:
        yield stacks


def test_a_reference_that_changed_beyond_its_limits_is_not_rewritten_until_the_operator_names_it(
        capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, target: Target) -> None:
    home = tmp_path / "home"
    square = paths.references_dir / "square.png"
    _inverted(square)                                  # what the graph change did to this case's render
    broken_reference = square.read_bytes()
    (paths.references_dir / "batch.png").unlink()      # a new case: no reference yet
    code, out, err = _golden(capsys, home, paths, "--update-references")
    # Before: square.png was rewritten with the render that changed, with a line saying so, and the run passed.
    assert code == 1, out
    assert square.read_bytes() == broken_reference
    assert (paths.references_dir / "batch.png").is_file()   # the new reference is made
    accept = (f"goldgate golden staging --update-references --cases-dir {shlex.quote(str(paths.cases_dir))} "
              f"--case square --accept-changed square --references-dir {shlex.quote(str(paths.references_dir))} "
              f"--reports-dir {shlex.quote(str(paths.reports_dir))}")
    assert "square.png left as it was: the one it replaces is dHash distance " in out, out
    assert "CHANGED beyond the case's limits" in out and f"`{accept}`" in out, out
    assert "1 reference was written by this run; 1 left as it was" in out, out
    # The operator looked at it and names it: that run replaces it, and runs that case alone.
    code, out, err = _golden(capsys, home, paths, *shlex.split(accept)[3:])
    assert code == 0, (out, err)
    assert square.read_bytes() != broken_reference
    assert "1 case named with --case" in out, out
    assert "reference: wrote square.png (" in err and "(accepted by --accept-changed))" in err, err
    # An update run still opens no gate; the ordinary run after it passes against the references now on disk.
    code, out, _err = _golden(capsys, home, paths)
    assert code == 0, out
    golden = [e for e in Ledger(home).entries() if e.kind == "golden"]
    assert [e.get("references_updated") for e in golden] == [True, True, False]


def test_the_missing_reference_advice_is_a_command_that_makes_that_reference_alone(
        capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, target: Target) -> None:
    home = tmp_path / "home"
    (paths.references_dir / "batch.png").unlink()
    square_before = (paths.references_dir / "square.png").stat().st_mtime_ns
    code, out, _err = _golden(capsys, home, paths)
    assert code == 1
    latest = (paths.reports_dir / "latest.json").read_bytes()
    [command] = [line.split("`")[1] for line in out.splitlines() if "no reference image batch.png" in line]
    assert command == (f"goldgate golden staging --update-references --cases-dir "
                       f"{shlex.quote(str(paths.cases_dir))} --case batch --references-dir "
                       f"{shlex.quote(str(paths.references_dir))} --reports-dir {shlex.quote(str(paths.reports_dir))}")
    code, out, _err = _golden(capsys, home, paths, *shlex.split(command)[3:])
    assert code == 0, out
    assert (paths.references_dir / "batch.png").is_file()
    assert (paths.references_dir / "square.png").stat().st_mtime_ns == square_before   # no other case ran
    assert "1 reference was written by this run:" in out, out
    assert (paths.reports_dir / "latest.json").read_bytes() == latest   # a run of named cases is never the gate's
    entry = Ledger(home).entries()[-1]
    assert entry.get("cases") == 1 and entry.get("only_cases") == ["batch"]


def test_an_update_run_that_wrote_nothing_does_not_say_it_rewrote_the_references(
        capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, target: Target) -> None:
    before = {p.name: p.read_bytes() for p in paths.references_dir.iterdir()}
    target.api.renders = lambda wf, inputs: [render_png(f"a broken graph {i}", int(inputs["width"]),
                                                        int(inputs["height"]))
                                             for i in range(int(inputs.get("batch_size", 1)))]
    code, out, _err = _golden(capsys, tmp_path / "home", paths, "--update-references")
    assert code == 1
    assert {p.name: p.read_bytes() for p in paths.references_dir.iterdir()} == before
    # Before: "references rewritten by this run: review each case's reference line above, commit references/ ..."
    assert "references rewritten" not in out, out
    assert out.splitlines()[-1] == ("no reference was written by this run; 2 left as they were (the reference lines "
                                    "above say why); the references are as they were")


@pytest.mark.parametrize(("argv", "said"), [
    (("--case", "nope"), "--case 'nope': no such case in "),
    (("--accept-changed", "square"), "--accept-changed square goes with --update-references"),
    (("--update-references", "--accept-changed", "nope"), "--accept-changed nope: no case of this run has that id"),
    (("--update-references", "--case", "batch", "--accept-changed", "square"),
     "--accept-changed square: no case of this run has that id"),
])
def test_a_case_named_that_the_run_does_not_have_is_refused_before_any_job(
        capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, target: Target, argv: tuple[str, ...],
        said: str) -> None:
    before = {p.name: p.read_bytes() for p in paths.references_dir.iterdir()}
    code, _out, err = _golden(capsys, tmp_path / "home", paths, *argv)
    assert code == 1 and said in err, err
    assert target.api.jobs == {}
    assert {p.name: p.read_bytes() for p in paths.references_dir.iterdir()} == before
