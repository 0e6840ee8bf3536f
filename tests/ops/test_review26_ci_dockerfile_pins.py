"""The Dockerfile's model layers against images/worker/models.yaml: the URL and sha256 each `fetch_model.py` layer
names, not only the path it writes. The local snapshot bakes what models.yaml says, the cloud image what the
Dockerfile fetches.

Before: `dockerfile_problems` compared each model's path alone, so a layer fetching another URL, or checking an
all-zero sha256, passed `goldgate build` without a warning and `goldgate checklist` green; only a test of the shipped
Dockerfile (tests/worker/test_worker_dockerfile.py) compared them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, dockerfile_problems
from images.worker.manifest import load_manifest

WORKER = Path(__file__).resolve().parents[2] / "images" / "worker"
MANIFEST = load_manifest(WORKER / "models.yaml")
SHIPPED = (WORKER / "Dockerfile").read_text(encoding="utf-8")
PINNED = next(m for m in MANIFEST.models if m.sha256)          # a model models.yaml pins by sha256
UNPINNED = next(m for m in MANIFEST.models if not m.sha256)    # one it leaves unpinned (fetched with `-`)
OTHER_URL = "https://mirror.example/models/" + PINNED.file
ZEROS = "0" * 64


def _layer(model) -> str:
    return next(line for line in SHIPPED.splitlines() if line.rstrip().endswith(f"/comfyui/models/{model.relative_path}"))


def _edited(tmp_path: Path, model, replacement: str) -> Path:
    context = tmp_path / "worker"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(SHIPPED.replace(_layer(model), replacement), encoding="utf-8")
    (context / "models.yaml").write_text((WORKER / "models.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return context / "Dockerfile"


def test_the_shipped_dockerfile_fetches_every_model_from_its_url_with_its_sha256() -> None:
    assert dockerfile_problems(WORKER / "Dockerfile", MANIFEST) == ()


def test_a_layer_fetching_another_url_against_an_all_zero_sha256_is_a_problem(tmp_path: Path) -> None:
    layer = _layer(PINNED).replace(PINNED.source_url, OTHER_URL).replace(PINNED.sha256, ZEROS)
    problems = dockerfile_problems(_edited(tmp_path, PINNED, layer), MANIFEST)
    assert problems == (
        f"the Dockerfile fetches {PINNED.relative_path} from {OTHER_URL}, models.yaml from {PINNED.source_url}",
        f"the Dockerfile checks {PINNED.relative_path} against sha256 {ZEROS}, models.yaml pins {PINNED.sha256}")


@pytest.mark.parametrize("which", ["unchecked", "pinned-in-the-dockerfile-alone"])
def test_a_sha256_only_one_side_pins_is_a_problem(tmp_path: Path, which: str) -> None:
    if which == "unchecked":   # models.yaml pins it, the layer checks nothing
        model, layer = PINNED, _layer(PINNED).replace(f" {PINNED.sha256} ", " - ")
        said = f"against sha256 - (unchecked), models.yaml pins {PINNED.sha256}"
    else:                      # the layer checks a sha256 models.yaml never confirmed
        model, layer = UNPINNED, _layer(UNPINNED).replace(" - ", f" {ZEROS} ")
        said = f"against sha256 {ZEROS}, models.yaml pins none (null)"
    assert layer != _layer(model)
    assert dockerfile_problems(_edited(tmp_path, model, layer), MANIFEST) == (
        f"the Dockerfile checks {model.relative_path} {said}",)


def test_a_fetch_continued_over_lines_is_read_whole(tmp_path: Path) -> None:
    url, sha256, size, target = _layer(PINNED).split()[-4:]
    layer = f"RUN python -B /opt/goldgate/fetch_model.py \\\n    {url} \\\n    {ZEROS} \\\n    {size} \\\n    {target}"
    assert dockerfile_problems(_edited(tmp_path, PINNED, layer), MANIFEST) == (
        f"the Dockerfile checks {PINNED.relative_path} against sha256 {ZEROS}, models.yaml pins {sha256}",)


def test_the_checklist_fails_and_the_build_warns_on_a_layer_that_is_not_models_yamls(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from goldgate.commands.release import _warn_unbaked_models

    dockerfile = _edited(tmp_path, PINNED, _layer(PINNED).replace(PINNED.sha256, ZEROS))
    problems = dockerfile_problems(dockerfile, MANIFEST)
    status, detail = checklist.rebuild_with_models(Facts(stack="staging", now=datetime.now(UTC),
                                                         dockerfile_problems=problems))
    assert status == checklist.FAIL and ZEROS in detail
    _warn_unbaked_models(dockerfile.parent, "Dockerfile")
    assert f"warning: the Dockerfile checks {PINNED.relative_path} against sha256 {ZEROS}" in capsys.readouterr().err


def test_a_layer_bounding_the_model_at_another_size_is_a_problem(tmp_path: Path) -> None:
    # fetch_model.py stops a download one byte past the layer's size: another size than models.yaml's fails the
    # right file, or lets a wrong one run on.
    layer = _layer(PINNED).replace(f" {PINNED.size} ", " 1 ")
    assert layer != _layer(PINNED)
    assert dockerfile_problems(_edited(tmp_path, PINNED, layer), MANIFEST) == (
        f"the Dockerfile bounds {PINNED.relative_path} at size 1 bytes, models.yaml gives {PINNED.size} bytes",)
