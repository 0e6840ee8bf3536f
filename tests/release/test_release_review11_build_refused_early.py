"""`goldgate build --repo`: what would be refused is refused before the build starts. The worker image bakes its
models (many GB): a build that the registry's tag check, the repository name or the tag refuse afterwards is an hour
of CI and a runner's disk for nothing. The engine is the stand-in of test_build_reuse.py (it records each build)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_build_reuse import REPO, _context, _engine, _identity
from test_cli_errors import one_error_line, run

from goldgate.release.build import SOURCE_LABEL, TagConflict, build_docker, source_sha256


@pytest.mark.parametrize("labels", [{SOURCE_LABEL: "0" * 64}, {}, None],
                         ids=["other-source", "no-source-label", "no-labels"])
def test_a_tag_that_names_an_image_of_other_source_is_refused_before_the_build(tmp_path: Path, labels: dict) -> None:
    # Before: the pushed image's label said "other source", the whole image was built anyway, and only then the
    # tag check refused it (TagConflict), having built a many-GB image for nothing.
    ctx = _context(tmp_path)
    built: list[str] = []
    with pytest.raises(TagConflict, match=r"was built from other source .*; tags are immutable: .*nothing was built"):
        build_docker(_engine(built, labels=labels), ctx, REPO, _identity(ctx))
    assert built == []


def test_the_image_pushed_from_this_source_is_still_taken(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    built: list[str] = []
    result = build_docker(_engine(built, labels={SOURCE_LABEL: source_sha256(ctx)}), ctx, REPO, _identity(ctx))
    assert result.reused and built == []


@pytest.mark.parametrize(("extra", "said"), [
    (["--repo", "Registry.Example/UPPER case"], "'Registry.Example/UPPER case' is not an image repository name"),
    (["--repo", "127.0.0.1:5000/worker", "--workflow-version", "2026/11"], "derived tag '2026/11-g"),
    (["--repo", "127.0.0.1:5000/worker", "--dockerfile", "Dockerfile.gpu"], "no Dockerfile at "),
    (["--engine", "local", "--repo", "127.0.0.1:5000/worker"], "--engine local builds a snapshot on this machine"),
], ids=["repo", "tag", "dockerfile", "local-with-repo"])
def test_a_build_that_would_be_refused_says_so_before_the_engine_is_asked(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str],
        said: str) -> None:
    # No engine answers here: before, each of these said "cannot reach a Docker engine" (or, with one, built the
    # image first), and the operator fixed the engine only to be refused after the build. `--engine local` with
    # `--repo` snapshotted locally and pushed nothing, silently.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    ctx = _context(tmp_path)
    code, out, err = run(capsys, tmp_path / "home", "build", "--context", str(ctx), *extra)
    assert code == 1 and said in one_error_line(err) and out == ""
    assert not (tmp_path / "home" / "ledger.jsonl").exists()
