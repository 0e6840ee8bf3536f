"""The relay of ComfyUI's output (`python -m <pkg>.sdk_logs comfyui-output`, fed by start.sh) at its edges, found by a
mutation audit: the level each kind of line gets (an operator's alert reads it), a line longer than the schema's
message cut into pieces with nothing lost, a last line without its newline, blank lines left out."""

from __future__ import annotations

import io
import json
import os

import pytest

from images.worker.logs import WorkerLog
from images.worker.sdk_logs import COMFY_PIECE_BYTES, relay_comfyui_output


def _relay(output: bytes) -> list[dict]:
    """Each `comfyui.output` line the relay writes for `output`, read from a pipe as start.sh hands it over."""
    assert len(output) < 60_000   # all written before the relay reads: less than a pipe's buffer
    read, write = os.pipe()
    os.write(write, output)
    os.close(write)
    out = io.StringIO()
    try:
        relay_comfyui_output(read, WorkerLog(out, stack="staging"))
    finally:
        os.close(read)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize(("line", "level"), [
    ("Traceback (most recent call last):", "error"),
    ("!!! Exception during processing !!! CUDA out of memory", "error"),
    ("Error occurred when executing KSampler:", "error"),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "error"),
    ("RuntimeError: expected scalar type Half but found Float", "error"),
    ("ValueError: Unknown sampler", "error"),
    ("KeyError: 'model'", "error"),
    ("Exception: the node raised", "error"),
    ("[ComfyUI-Manager] FATAL: cannot load the node list", "error"),
    ("model_management: CRITICAL low VRAM", "error"),
    ("ERROR loading custom node tiny-node", "error"),
    ("custom node load: 12 ok, 0 ERRORS", "info"),
    ("Prompt executed in 3.2 seconds, 0 errors", "info"),
    ("the TERROR of a user-written prompt", "info"),
    ("WARN: xformers not found, using pytorch attention", "warning"),
    ("WARNING: this card does not support bf16", "warning"),
    ("a warning about nothing in particular", "info"),
    ("FORWARNING the unwary", "info"),
])
def test_each_kind_of_comfyui_line_gets_the_level_an_operator_alerts_on(line: str, level: str) -> None:
    [said] = _relay(line.encode() + b"\n")
    assert (said["event"], said["level"], said["message"]) == ("comfyui.output", level, line)


def test_a_line_longer_than_a_message_holds_is_cut_into_pieces_and_nothing_is_lost() -> None:
    long = bytes(ord("a") + n % 26 for n in range(2 * COMFY_PIECE_BYTES + 123))
    said = _relay(long + b"\nnext line\n")
    assert [len(line["message"]) for line in said] == [COMFY_PIECE_BYTES, COMFY_PIECE_BYTES, 123, 9]
    assert "".join(line["message"] for line in said[:3]).encode() == long


def test_a_last_line_without_its_newline_is_relayed_and_blank_lines_are_not() -> None:
    said = _relay(b"first\n   \n\t\n\nStopped server")
    assert [line["message"] for line in said] == ["first", "Stopped server"]
