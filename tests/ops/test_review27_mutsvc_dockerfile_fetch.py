"""A `fetch_model.py` layer with an argument too many (review 27's mutation audit: no test gave one) is a problem
that shows the layer's arguments and the shape expected, not a crash of `goldgate checklist` or `goldgate build`."""

from __future__ import annotations

from pathlib import Path

from goldgate.ops.checklist_facts import dockerfile_problems
from images.worker.manifest import load_manifest

WORKER = Path(__file__).resolve().parents[2] / "images" / "worker"
MANIFEST = load_manifest(WORKER / "models.yaml")


def test_a_fetch_layer_with_an_extra_argument_is_named_with_the_shape_expected(tmp_path: Path) -> None:
    shipped = (WORKER / "Dockerfile").read_text(encoding="utf-8")
    model = MANIFEST.models[0]
    target = f"/comfyui/models/{model.relative_path}"
    layer = next(line for line in shipped.splitlines() if line.rstrip().endswith(target))
    assert "fetch_model.py" in layer
    args = layer.split("fetch_model.py", 1)[1].split()
    assert len(args) == 4, "the shipped shape: URL SHA256|- SIZE|- DEST"
    extra = layer.replace(f" {args[0]} ", f" {args[0]} --retries=3 ", 1)
    (tmp_path / "Dockerfile").write_text(shipped.replace(layer, extra), encoding="utf-8")
    shown = " ".join([args[0], "--retries=3", *args[1:]])
    said = f"the Dockerfile fetches {model.relative_path} with '{shown}', not `URL SHA256|- SIZE|- {target}`"
    assert dockerfile_problems(tmp_path / "Dockerfile", MANIFEST) == (said,)
