"""start.sh's own lines (json_quote, json_or_null, log_event: JSON built in bash alone) stay valid JSON whatever the
endpoint's settings hold: a quote, a backslash, a newline, a tab or another control character in STACK or
WORKFLOW_VERSION, an over-long WORKER_IMAGE_TAG (cut to 256 characters), an unset one (null). Found by a mutation
audit: each escape could be dropped from start.sh with every earlier test passing, since no setting held one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from test_review31_img31_start_logs import RELAY, STAND_IN, _cleanup, _stop
from worker_harness import REPO, WORKER_DIR

ODD = 'st"ag\\ing\tnew\nline\r\x01\x1f'


def _run(tmp_path: Path, **settings: str | None) -> list[dict]:
    python = tmp_path / "python"
    python.write_text(STAND_IN.replace("{comfy}", "echo comfy-output").replace("{relay}", RELAY))
    python.chmod(0o755)
    events = tmp_path / "events"
    events.touch()
    env = {**os.environ, "PYTHON": str(python), "COMFY_DIR": str(tmp_path), "EVENTS": str(events),
           "APP_DIR": str(tmp_path), "WORKER_PKG": "images.worker", "PYTHONPATH": str(REPO),
           "R2_ENDPOINT_URL": "http://127.0.0.1:9", "R2_BUCKET": "results", "R2_ACCESS_KEY_ID": "r2-key-id-41c2",
           "R2_SECRET_ACCESS_KEY": "r2-secret-mut31-0c9a"}
    for name in ("STACK", "WORKFLOW_VERSION", "WORKER_IMAGE_TAG"):
        env.pop(name, None)
    env.update({name: value for name, value in settings.items() if value is not None})
    with (tmp_path / "stdout").open("wb") as out, (tmp_path / "stderr").open("wb") as err:
        proc = subprocess.Popen(["bash", str(WORKER_DIR / "start.sh")], env=env, cwd=tmp_path, stdout=out, stderr=err,
                                start_new_session=True)
    with _cleanup(proc):
        assert _stop(proc, events) == 0
    # start.sh's own lines are on stderr: each must parse as one JSON object, as an operator's pipeline reads it.
    return [json.loads(line) for line in (tmp_path / "stderr").read_text().splitlines()]


def test_settings_with_quotes_backslashes_and_control_characters_stay_valid_json(tmp_path: Path) -> None:
    tag = "registry.example/team/worker:" + "t" * 300
    lines = _run(tmp_path, STACK=ODD, WORKFLOW_VERSION="2026.11.0", WORKER_IMAGE_TAG=tag)
    assert [line["event"] for line in lines] == ["worker.start.comfyui_launched", "worker.start.handler_launched",
                                                "worker.start.handler_exited"]
    for line in lines:
        assert (line["stack"], line["workflow_version"], line["worker_image_tag"]) == (ODD, "2026.11.0", tag[:256])


def test_an_unset_or_empty_setting_is_null(tmp_path: Path) -> None:
    lines = _run(tmp_path, STACK=None, WORKFLOW_VERSION="", WORKER_IMAGE_TAG=None)
    assert lines and all((line["stack"], line["workflow_version"], line["worker_image_tag"]) == (None, None, None)
                         for line in lines), lines
