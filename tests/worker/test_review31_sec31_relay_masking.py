"""The ComfyUI output relay (`python -m <pkg>.sdk_logs comfyui-output`) masks the worker's credentials in every
`comfyui.output` line. A line longer than one event holds is cut into pieces of COMFY_PIECE_BYTES; each piece was
masked on its own, after the cut, so a credential that straddles a cut came out in two halves, one per line: an
operator's log store (or anyone reading two consecutive lines) has the whole key. Mask first, then cut, as
WorkerLog.log and sdk_logs._traceback_text already do ("masked before it is cut: a cut secret would escape the
mask")."""

from __future__ import annotations

import io
import json
import os

from images.worker.logs import WorkerLog
from images.worker.sdk_logs import COMFY_PIECE_BYTES, relay_comfyui_output

SECRET = "r2-secret-6f1d0c9a77e04b1f"


def _relay(data: bytes) -> list[dict]:
    out = io.StringIO()
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    try:
        relay_comfyui_output(read, WorkerLog(out, secrets=(SECRET,), stack="staging"))
    finally:
        os.close(read)
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_a_credential_across_a_piece_boundary_is_masked_in_both_pieces() -> None:
    # A custom node dumps a dict holding the key; the key starts 10 bytes before the first cut.
    line = b"x" * (COMFY_PIECE_BYTES - 10) + SECRET.encode() + b" tail\n"
    lines = _relay(line)
    assert [entry["event"] for entry in lines] == ["comfyui.output", "comfyui.output"]
    joined = "".join(entry["message"] for entry in lines)
    assert SECRET not in joined, "the credential came out whole across two comfyui.output lines"
    for entry in lines:
        # Neither piece may carry a recognisable part of it either.
        assert SECRET[:10] not in entry["message"] and SECRET[10:] not in entry["message"]

