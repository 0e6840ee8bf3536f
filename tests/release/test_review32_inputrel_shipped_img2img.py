"""The shipped image-to-image workflow (`sdxl-img2img`), its golden cases with their committed input image, and the
README's "Sending an image" example run as written against a local STAGING stack."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from ci_policy import needs
from PIL import Image

from goldgate.release.cases import GOLDEN_DIR, REFERENCES_DIR, load_cases
from images.worker.workflows import load_workflow
from service.workflows import parse_workflow

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "images" / "worker" / "workflows"


def test_sdxl_img2img_loads_in_both_loaders_with_an_image_and_a_denoise_from_0_to_1() -> None:
    path = WORKFLOWS / "sdxl-img2img.json"
    service = parse_workflow(path.read_text(encoding="utf-8"), str(path))
    worker = load_workflow(path)
    assert service.version == worker.version == "sdxl-img2img@1.0.0"
    params = {p.name: p for p in service.parameters}
    assert params["image"].type == "image" and params["image"].required and params["image"].default is None
    denoise = params["denoise"]
    assert denoise.type == "number" and (denoise.min, denoise.max) == (0.0, 1.0) and 0 < denoise.default < 1
    # Clients of sdxl-txt2img set the sampler the same way here.
    txt2img = {p.name: p for p in parse_workflow((WORKFLOWS / "sdxl-txt2img.json").read_text(), "txt2img").parameters}
    for name in ("prompt", "negative_prompt", "seed", "steps", "cfg", "sampler", "scheduler"):
        assert params[name].type == txt2img[name].type and params[name].choices == txt2img[name].choices, name


def test_sdxl_img2img_encodes_the_loaded_image_for_its_sampler_with_the_txt2img_checkpoint() -> None:
    raw = json.loads((WORKFLOWS / "sdxl-img2img.json").read_text(encoding="utf-8"))
    graph = raw["graph"]
    txt2img = json.loads((WORKFLOWS / "sdxl-txt2img.json").read_text(encoding="utf-8"))["graph"]

    def node(class_type: str) -> tuple[str, dict]:
        [(key, found)] = [(k, n) for k, n in graph.items() if n["class_type"] == class_type]
        return key, found

    load_id, _ = node("LoadImage")
    encode_id, encode = node("VAEEncode")
    sampler_id, sampler = node("KSampler")
    decode_id, decode = node("VAEDecode")
    _, save = node("SaveImage")
    ckpt_id, ckpt = node("CheckpointLoaderSimple")
    assert encode["inputs"]["pixels"] == [load_id, 0] and encode["inputs"]["vae"] == [ckpt_id, 2]
    assert sampler["inputs"]["latent_image"] == [encode_id, 0]   # no EmptyLatentImage: the input's size
    assert decode["inputs"]["samples"] == [sampler_id, 0] and save["inputs"]["images"] == [decode_id, 0]
    assert "EmptyLatentImage" not in {n["class_type"] for n in graph.values()}
    [txt2img_ckpt] = [n for n in txt2img.values() if n["class_type"] == "CheckpointLoaderSimple"]
    assert ckpt["inputs"]["ckpt_name"] == txt2img_ckpt["inputs"]["ckpt_name"]
    models = yaml.safe_load((REPO / "images" / "worker" / "models.yaml").read_text(encoding="utf-8"))["models"]
    assert ckpt["inputs"]["ckpt_name"] in {m["file"] for m in models}
    image = next(p for p in raw["parameters"] if p["name"] == "image")
    assert (image["node"], image["input"]) == (load_id, "image")


def test_the_img2img_cases_send_a_small_committed_image_and_expect_its_size() -> None:
    cases = [case for case in load_cases() if case.workflow == "sdxl-img2img"]
    assert cases and any(case.smoke for case in cases)   # PROD's smoke run sends an image too
    for case in cases:
        file = case.input_files["image"]
        assert file.path.parent == GOLDEN_DIR / "inputs" and file.bytes < 64 * 1024, file
        width, height = Image.open(io.BytesIO(file.path.read_bytes())).size
        assert (case.expect.width, case.expect.height) == (width, height) != (1024, 1024), case.id
        assert (REFERENCES_DIR / "local" / case.reference_name).is_file(), case.id


def _image_block() -> tuple[list[str], list[str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    send = readme.split("To send a job to a local stack yourself", 1)[1].split("\n## ", 1)[0]
    defs = [ln[4:] for ln in send.splitlines() if ln.startswith(("    API=", "    auth()"))]
    image = readme.split("\n## Sending an image\n", 1)[1].split("\n## ", 1)[0]
    return defs, [ln[4:] for ln in image.splitlines() if ln.startswith("    ")]


@needs(shutil.which("bash") is not None and shutil.which("curl") is not None, "bash and curl")
def test_the_readmes_image_example_uploads_and_creates_a_job_that_renders_at_the_images_size(tmp_path: Path) -> None:
    from goldgate.local.platform import LocalPlatform

    defs, block = _image_block()
    assert len(defs) == 2 and block[0].startswith("KEY=") and "/api/inputs" in block[0]
    bindir = Path(sys.executable).parent
    env = {**os.environ, "GOLDGATE_HOME": str(tmp_path / "home"), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("GOLDGATE_TARGET", None)

    def bash(script: str) -> str:
        done = subprocess.run(["bash", "-c", "set -e -o pipefail\n" + script], check=False, cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"README example failed: {done.stderr[-2000:]}"
        return done.stdout

    try:
        created = json.loads(bash("\n".join([*defs, *block])))
        assert created["status"] == "queued" and re.fullmatch(r"[0-9a-f]{32}", created["job_id"]), created
        status_script = "\n".join([*defs, f'curl -sS -H @<(auth) "$API/api/status/{created["job_id"]}"'])
        deadline = time.monotonic() + 90
        while (status := json.loads(bash(status_script)))["status"] in ("queued", "in_progress"):
            assert time.monotonic() < deadline, f"job still {status['status']} after 90 s"
            time.sleep(0.2)
        assert status["status"] == "completed", status
        [result] = status["results"]
        assert (result.get("width"), result.get("height")) == (768, 512), result
    finally:
        LocalPlatform(tmp_path / "home").down("staging")
