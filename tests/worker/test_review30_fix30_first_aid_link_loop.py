"""Review 30 (fix30): a models tree with links back up the tree (`checkpoints/a -> .`, `checkpoints/b -> .`, as a
copy script or a hand can leave them) hung the worker's first aid for a rejected prompt and `goldgate doctor`: the
look for the model in a subfolder followed every link, and two loops double the walk at every level, some 2**40
directories before the kernel's limit on links in one path ends it. Each real directory is now walked once, and the
hint still names the subfolder the model sits in.

Run in a child process: before the fix it never answered, and the child is stopped (generously late) rather than the
test run hanging with it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from worker_harness import REPO, WORKER_DIR, bake_models

CHECKPOINT = "sd_xl_base_1.0.safetensors"

_CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    from images.worker.comfy_client import PromptRejected
    from images.worker.first_aid import explain_rejection
    from images.worker.preflight import run_preflight

    models, manifest, workflows, file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    listed = [f"sdxl/{file}"]
    rejected = PromptRejected(
        {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "",
         "extra_info": {}},
        {"4": {"class_type": "CheckpointLoaderSimple", "dependent_outputs": ["9"], "errors": [
            {"type": "value_not_in_list", "message": "Value not in list",
             "details": f"ckpt_name: '{file}' not in {listed}",
             "extra_info": {"input_name": "ckpt_name", "input_config": [listed, {}], "received_value": file}}]}})
    graph = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": file}}}
    first_aid = explain_rejection(rejected, graph, (str(models),))
    [doctor] = [m.message for m in run_preflight(manifest, workflows, [models]).models if m.file == file]
    print(json.dumps({"first_aid": first_aid, "doctor": doctor}))
""")


def test_links_back_up_the_models_tree_leave_the_subfolder_hint_answering(tmp_path: Path) -> None:
    models = bake_models(tmp_path / "models", skip=(CHECKPOINT,))
    checkpoints = models / "checkpoints"
    (checkpoints / "sdxl").mkdir(parents=True)
    (checkpoints / "sdxl" / CHECKPOINT).write_bytes(bytes(64))
    (checkpoints / "a").symlink_to(".")
    (checkpoints / "b").symlink_to(".")

    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(models), str(WORKER_DIR / "models.yaml"),
                               str(WORKER_DIR / "workflows"), CHECKPOINT], cwd=REPO, capture_output=True, text=True,
                              timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise AssertionError("the first aid and doctor never answered: the walk followed the loops for good") from None
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    for where, message in said.items():
        assert str(checkpoints / "sdxl" / CHECKPOINT) in message, (where, message)
        assert f"'sdxl/{CHECKPOINT}'" in message, (where, message)
        # Named by the real folder, once: not by the loops' a/sdxl, b/a/sdxl, ...
        assert str(checkpoints / "a") not in message and str(checkpoints / "b") not in message, (where, message)
