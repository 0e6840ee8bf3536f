"""Node 20's own fetch reads the local server's early answer to a large body: an anonymous upload's 401 and an
over-limit create's 413. The server closed the socket with the body still coming, the kernel reset the connection,
and fetch failed (`TypeError: fetch failed`, cause ECONNRESET) in 6 tries of 10, where httpx and curl happened to get
the answer. Node, run on a script given inline, against the in-process server."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from ci_policy import needs
from service_testkit import API_TOKEN, edge_in_thread

from service import local_server

NODE = shutil.which("node")
pytestmark = needs(NODE is not None, "node (20 or later: its fetch)")

_TRIES = 10

# argv: URL, PATH, TOKEN ("" for none), CONTENT_TYPE, BODY_BYTES, TRIES. Prints one JSON list, one entry a try:
# {"status", "code"} for an answer read, {"error", "cause"} for a fetch that failed.
_CLIENT = r"""
const [url, path, token, type, size, tries] = process.argv.slice(1);
const body = Buffer.alloc(Number(size), 7);
const headers = { "Content-Type": type };
if (token) headers.Authorization = `Bearer ${token}`;
const out = [];
for (let i = 0; i < Number(tries); i++) {
  try {
    const response = await fetch(url + path, { method: "POST", headers, body });
    const json = await response.json();
    out.push({ status: response.status, code: json.error && json.error.code });
  } catch (error) {
    out.push({ error: String(error), cause: String(error.cause && (error.cause.code || error.cause)) });
  }
}
console.log(JSON.stringify(out));
"""


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[local_server.RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        yield server


def _fetch(server: local_server.RunningServer, path: str, token: str, content_type: str, size: int) -> list[dict]:
    done = subprocess.run([NODE, "--input-type=module", "-e", _CLIENT, server.url, path, token, content_type,
                           str(size), str(_TRIES)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("size", [4 * 1024 * 1024, 20 * 1024 * 1024 + 1], ids=["4MiB", "20MiB+1"])
def test_node_fetch_of_an_anonymous_upload_reads_its_401_every_time(edge, size):
    tries = _fetch(edge, "/api/inputs", "", "image/png", size)
    assert tries == [{"status": 401, "code": "unauthorized"}] * _TRIES, tries


def test_node_fetch_of_a_create_over_the_body_limit_reads_its_413_every_time(edge):
    tries = _fetch(edge, "/api/queue/create", API_TOKEN, "application/json", 4 * 1024 * 1024)
    assert tries == [{"status": 413, "code": "body_too_large"}] * _TRIES, tries
