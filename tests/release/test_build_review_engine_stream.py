"""`goldgate build --repo` against an engine whose answer is slow or breaks off. No Docker engine runs here, so the
engine is a stand-in on 127.0.0.1 that speaks the few Engine API calls `build_docker` makes (ping, version, ask the
registry, build, inspect, pull, push), streaming as dockerd does; the docker SDK, its HTTP client and its stream
parsing are the real ones."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any, ClassVar

import docker
import pytest
from serving import JsonHandler, serving
from test_build_reuse import _context

from goldgate.cli import main
from goldgate.release.build import ReleaseIdentity, build_docker, manifest_sha256
from goldgate.release.ledger import Ledger

REPO = "127.0.0.1:5000/goldgate-worker"
PUSHED = "sha256:" + "d" * 64
BUILT = "sha256:" + "e" * 64
SILENCE_S = 3          # what the engine stays silent for, against a client whose timeout is 1 s


class Engine(JsonHandler):
    """dockerd, as far as `build_docker` asks it. `tag_pushed`: the registry holds the tag already (as PUSHED).
    `silent`: the step whose stream pauses SILENCE_S mid-way, as a push does while the registry takes in a model
    layer. `drops`: the step whose connection breaks off (the engine restarted, the runner's socket went)."""

    protocol_version = "HTTP/1.1"
    tag_pushed: ClassVar[bool] = False
    silent: ClassVar[str] = ""
    drops: ClassVar[str] = ""

    def _body(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0], 16):
                self.rfile.read(size + 2)
            self.rfile.readline()
        else:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _stream(self, step: str, first: list[dict], rest: list[dict]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(lines: list[dict]) -> None:
            for line in lines:
                data = json.dumps(line).encode() + b"\r\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        send(first)
        if step == self.drops:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if step == self.silent:
            time.sleep(SILENCE_S)
        send(rest)
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path.endswith("/_ping"):
            body = b"OK"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path.endswith("/version"):
            self._json(200, {"ApiVersion": "1.41", "Version": "stand-in"})
        elif "/distribution/" in path:
            if self.drops == "ask":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif self.tag_pushed:
                self._json(200, {"Descriptor": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                                                "digest": PUSHED, "size": 1}, "Platforms": []})
            else:
                self._json(404, {"message": "manifest unknown"})
        elif path.endswith(f"/images/{BUILT.removeprefix('sha256:')[:12]}/json"):
            self._json(200, {"Id": BUILT, "RepoDigests": [], "Config": {"Labels": {}}})
        else:
            self._json(404, {"message": f"no such route {path}"})

    def do_POST(self) -> None:
        self._body()
        path = self.path.split("?")[0]
        if path.endswith("/build"):
            self._stream("build", [{"stream": "Step 1/2 : FROM scratch\n"}],
                         [{"aux": {"ID": BUILT}}, {"stream": f"Successfully built {BUILT[7:19]}\n"}])
        elif path.endswith("/images/create"):
            self._stream("pull", [{"status": "Pulling fs layer", "id": "0a1b"}], [{"status": f"Digest: {PUSHED}"}])
        elif path.endswith("/push"):
            self._stream("push", [{"status": "Pushing", "id": "0a1b", "progressDetail": {"current": 1, "total": 2}}],
                         [{"status": "Pushed", "id": "0a1b", "progressDetail": {}},
                          {"aux": {"Tag": "t", "Digest": PUSHED, "Size": 529}}])
        else:
            self._json(404, {"message": f"no such route {path}"})


def _engine(**how: Any) -> type[Engine]:
    return type("StandInEngine", (Engine,), how)


def test_a_push_the_engine_is_silent_in_for_longer_than_the_clients_timeout_still_gives_the_digest(
        tmp_path: Path) -> None:
    # The worker's model layers are many GB: while the registry takes one in, the engine's push stream says nothing.
    # The SDK sends a push with the client's timeout (60 s from docker.from_env()), so the read timed out, a urllib3
    # traceback ended `goldgate build`, and the engine, its client gone, gave the push up: every re-run the same.
    ctx = _context(tmp_path)
    identity = ReleaseIdentity("2026.11.0", "c" * 40, manifest_sha256(ctx))
    with serving(_engine(silent="push")) as url:
        client = docker.DockerClient(base_url=url.replace("http://", "tcp://"), version="1.41", timeout=1)
        try:
            result = build_docker(client, ctx, REPO, identity)
        finally:
            client.close()
    assert (result.image, result.digest, result.reused) == (f"{REPO}@{PUSHED}", PUSHED, False)
    assert client.api.timeout == 1    # the caller's client keeps its own timeout for everything else


@pytest.mark.parametrize(("step", "tag_pushed", "words"), [
    ("ask", False, f"cannot ask the registry about {REPO}:"),
    ("pull", True, f"cannot pull {REPO}@{PUSHED} to check whether it was built from this source"),
    ("build", False, "docker build of "),
    ("push", False, f"push of {REPO}:"),
])
def test_a_connection_to_the_engine_that_breaks_off_is_one_error_line_and_no_build_is_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, step: str, tag_pushed: bool,
        words: str) -> None:
    # The engine restarts, or the runner's socket goes, in the middle of a stream the SDK reads raw: urllib3 raised
    # its own ProtocolError, which no `except docker.errors.APIError` catches, and `goldgate build` ended in a
    # traceback instead of saying which step broke off.
    ctx = _context(tmp_path)
    home = tmp_path / "home"
    with serving(_engine(drops=step, tag_pushed=tag_pushed)) as url:
        monkeypatch.setenv("DOCKER_HOST", url.replace("http://", "tcp://"))
        code = main(["build", "--home", str(home), "--context", str(ctx), "--repo", REPO,
                     "--workflow-version", "2026.11.0", "--json"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err, err
    [line] = [line for line in err.splitlines() if line.startswith("goldgate: error: ")]   # the rest is progress
    assert line.startswith(f"goldgate: error: {words}") and "connection to the Docker engine was lost" in line, line
    assert not Ledger(home).entries()
