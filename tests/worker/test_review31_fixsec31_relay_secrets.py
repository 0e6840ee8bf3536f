"""The ComfyUI output relay (`python -m <pkg>.sdk_logs comfyui-output`) masks every credential the worker holds in
every `comfyui.output` line, however the output is cut: by a piece's end (a long line), between two reads of the
pipe, or by a line end inside a multi-line value. It masks the value of every variable start.sh keeps from ComfyUI
(HF_TOKEN, a *_PASSWORD, ...), not only the R2 and RunPod keys the handler reads, and a line it falls back to writing
as plain text is masked too.

Before: each line was cut first and masked after, per piece, so a key across a cut came out in two halves (one per
line, whole when read together); only the R2 and RunPod values were masked, so a Hugging Face token ComfyUI printed
went out as it was; and the fallback wrote the unmasked bytes."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from test_review31_img31_start_logs import _cleanup, _lines, _start, _stop
from worker_harness import WORKER_DIR

from images.worker import sdk_logs
from images.worker.logs import WorkerLog
from images.worker.sdk_logs import COMFY_PIECE_BYTES, relay_comfyui_output

SECRET = "r2-secret-6f1d0c9a77e04b1f"


def _pieces_of(secret: str, size: int = 5) -> set[str]:
    """Every run of `size` characters of `secret`: what a reader could recognise it by."""
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def _relay_reads(reads: list[bytes], log: WorkerLog, monkeypatch: pytest.MonkeyPatch,
                 fallback: io.BytesIO | None = None) -> None:
    """The relay fed `reads`, one os.read each, as ComfyUI's writes arrive through a pipe."""
    left = list(reads)
    with monkeypatch.context() as patch:
        patch.setattr(sdk_logs.os, "read", lambda fd, size: left.pop(0) if left else b"")
        relay_comfyui_output(0, log, fallback)


def _messages(out: io.StringIO) -> list[str]:
    return [json.loads(line)["message"] for line in out.getvalue().splitlines() if line.strip()]


def test_a_secret_split_between_two_reads_near_a_cut_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    # ComfyUI wrote a long line; the pipe's first read ends 8 bytes into the key, 3 bytes past the first cut.
    line = b"x" * (COMFY_PIECE_BYTES - 5) + SECRET.encode() + b" tail\n"
    out = io.StringIO()
    _relay_reads([line[:COMFY_PIECE_BYTES + 3], line[COMFY_PIECE_BYTES + 3:]],
                 WorkerLog(out, secrets=(SECRET,)), monkeypatch)
    said = _messages(out)
    assert "".join(said) == "x" * (COMFY_PIECE_BYTES - 5) + "[redacted] tail"
    for message in said:
        assert not {piece for piece in _pieces_of(SECRET) if piece in message}, message


def test_a_multi_line_secret_is_masked_though_each_line_is_an_event(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"
    out = io.StringIO()
    _relay_reads([b"loaded " + key.encode() + b" from the node's config\n"], WorkerLog(out, secrets=(key,)),
                 monkeypatch)
    assert _messages(out) == ["loaded [redacted] from the node's config"]


def test_a_line_the_relay_cannot_write_as_v1_falls_back_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise ValueError("the log stream refuses the line")

    fallback = io.BytesIO()
    _relay_reads([b"a node read the key " + SECRET.encode() + b"\n"], WorkerLog(Broken(), secrets=(SECRET,)),
                 monkeypatch, fallback)
    assert fallback.getvalue() == b"a node read the key [redacted]\n"


def test_start_sh_masks_every_credential_it_keeps_from_comfyui(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # ComfyUI starts without them (start.sh unsets every credential's name), but a node can still print one it read
    # elsewhere: the Hugging Face token from its cache file, a password from a config dump.
    token, password = "hf_bQ3xVtYc8mPz7LkJ2sWn9RdFh4GaUe", "correct-horse-battery-9"
    for name, value in (("HF_TOKEN", token), ("CIVITAI_API_PASSWORD", password), ("HF_SEEN", token),
                        ("CIVITAI_SEEN", password)):
        monkeypatch.setenv(name, value)
    comfy = r"""
printf 'hf hub login with %s\n' "$HF_SEEN"
printf 'civitai: %s ok\n' "$CIVITAI_SEEN" >&2
printf 'HF_TOKEN in my env: [%s]\n' "${HF_TOKEN:-}"
"""
    proc, events = _start(tmp_path, comfy=comfy)
    with _cleanup(proc):
        assert _stop(proc, events) == 0
    said = [line["message"] for line in _lines(tmp_path) if line["event"] == "comfyui.output"]
    assert said[:3] == ["hf hub login with [redacted]", "civitai: [redacted] ok", "HF_TOKEN in my env: []"]
    written = (tmp_path / "stdout").read_text() + (tmp_path / "stderr").read_text()
    assert token not in written and password not in written


def test_the_relay_masks_the_names_start_sh_keeps_from_comfyui() -> None:
    # One list in two languages: a name start.sh unsets but the relay does not mask is a value ComfyUI may still
    # print (read from a file) unmasked.
    script = (WORKER_DIR / "start.sh").read_text()
    [patterns] = re.findall(r'case "\$\{NAME\^\^\}" in\s*\n\s*([^)]*)\)', script)
    shell = sorted(pattern.strip("*") for pattern in patterns.split("|"))
    assert shell == sorted(sdk_logs._CREDENTIAL_NAME.pattern.split("|"))
    env = {"HF_TOKEN": "hf_bQ3xVtYc8m", "MY_API_KEY": "k-123456", "DB_PASSWORD": "pw-123456", "FLAG_TOKEN": "1",
           "STACK": "staging-long-name"}
    assert sorted(sdk_logs.credential_values(env)) == ["hf_bQ3xVtYc8m", "k-123456", "pw-123456"]
