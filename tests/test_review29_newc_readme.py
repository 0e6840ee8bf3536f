"""What a newcomer found following README.md verbatim (session 29): its `--target cloud` paragraph named `stuck`,
`prune` and `dr-drill` only by `--cloud` and left `recover`, `cancel` and `history` out, though each takes
`--target cloud`; and it showed no way to fetch an image by its signed link, which a shell splits at its `&` unless
quoted (the request then goes without its signature, a 401 that asks for a token the link does not need); and its
"send a job" block read `API` from `goldgate status`, which gives a stack that is down (after `goldgate down all`, or
a reboot) no URL: every curl then went to a host named `None`."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ci_policy import needs

from goldgate.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def _readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def _cloud_commands() -> set[str]:
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {name for name, sub in subs.items()
            if any("--target" in a.option_strings and "cloud" in (a.choices or ()) for a in sub._actions)}


def test_the_readmes_target_cloud_paragraph_names_every_command_that_takes_it():
    paragraph = " ".join(_readme().split("Every command that reads state takes", 1)[1].split("\n\n", 1)[0].split())
    spans = re.findall(r"`([^`]+)`", paragraph)
    # named as itself (`stuck`) or with its `--target` (`history --target cloud`); `dr-drill --cloud` alone is the
    # old spelling, which tells a reader the command takes no --target
    named = {s.split()[0] for s in spans if len(s.split()) == 1 or "--target" in s.split()}
    cloud = _cloud_commands()
    assert {"stuck", "prune", "dr-drill", "recover", "cancel", "history", "deploy"} <= cloud
    assert cloud - named == set(), "README.md: say these take `--target cloud` too"


def _fetch_line() -> str:
    found = re.search(r"`(curl [^`]*'<url>'[^`]*)`", " ".join(_readme().split()))
    assert found, "README.md: show how to fetch a result image by its signed link"
    return found.group(1)


def _bash(script: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-c", script], check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@needs(shutil.which("bash") is not None and shutil.which("curl") is not None, "bash and curl")
def test_the_readmes_fetch_line_saves_the_image_and_unquoted_the_link_is_refused_as_it_says(tmp_path: Path) -> None:
    from goldgate.local.platform import LocalPlatform

    fetch = _fetch_line()
    assert "'<url>'" in fetch and re.search(r"-o (\S+)", fetch)
    saved = tmp_path / re.search(r"-o (\S+)", fetch).group(1)
    text = " ".join(_readme().split())
    assert "Quote the link: it holds an `&`" in text and "(401 `unauthorized`)" in text
    bindir = Path(sys.executable).parent
    env = {**os.environ, "GOLDGATE_HOME": str(tmp_path / "home"), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("GOLDGATE_TARGET", None)
    platform = LocalPlatform(tmp_path / "home")
    try:
        _bash("goldgate up staging >/dev/null", tmp_path, env)
        api, token = platform.status("staging").api_url, platform.api_token("staging")
        auth = ["-H", f"Authorization: Bearer {token}"]
        created = json.loads(subprocess.run(
            ["curl", "-sS", *auth, "-H", "Content-Type: application/json", f"{api}/api/queue/create", "-d",
             '{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse at dusk"}}'],
            check=True, capture_output=True, text=True, timeout=60).stdout)
        deadline = time.monotonic() + 90
        while True:
            status = json.loads(subprocess.run(["curl", "-sS", *auth, f"{api}/api/status/{created['job_id']}"],
                                               check=True, capture_output=True, text=True, timeout=60).stdout)
            if status["status"] not in ("queued", "in_progress"):
                break
            assert time.monotonic() < deadline, "the job did not end in 90 s"
            time.sleep(0.2)
        assert status["status"] == "completed", status
        url = status["results"][0]["url"]
        assert "&" in url
        _bash(fetch.replace("<url>", url), tmp_path, env)  # as written: quoted, no token
        assert saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        saved.unlink()
        _bash(fetch.replace("'<url>'", url) + "; wait", tmp_path, env)  # unquoted: the shell splits it at the &
        refused = json.loads(saved.read_text(encoding="utf-8"))
        assert refused["error"]["code"] == "unauthorized"
    finally:
        platform.down("staging")


def _send_a_job_lines() -> list[str]:
    text = _readme().split("To send a job to a local stack yourself", 1)[1].split("\n## ", 1)[0]
    return [ln[4:] for ln in text.splitlines() if ln.startswith("    ")]


@needs(shutil.which("bash") is not None and shutil.which("curl") is not None, "bash and curl")
def test_the_readmes_send_a_job_block_works_on_a_stack_that_is_down(tmp_path: Path) -> None:
    from goldgate.local.platform import LocalPlatform

    lines = _send_a_job_lines()
    setup = [ln for ln in lines if ln.startswith(("API=", "auth()"))] + [ln for ln in lines if "/api/workflows" in ln]
    assert len(setup) == 3, lines
    bindir = Path(sys.executable).parent
    env = {**os.environ, "GOLDGATE_HOME": str(tmp_path / "home"), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("GOLDGATE_TARGET", None)
    platform = LocalPlatform(tmp_path / "home")
    try:
        _bash("goldgate up staging >/dev/null && goldgate down staging", tmp_path, env)  # a stack that ran, now down
        assert not platform.status("staging").running
        out = _bash("set -e -o pipefail\n" + "\n".join(setup) + '\necho; echo "API=$API"', tmp_path, env)
        answer, api = out.rsplit("\nAPI=", 1)
        assert {"sdxl-txt2img", "flux-schnell-lora"} <= {w["id"] for w in json.loads(answer)["workflows"]}
        assert api.strip() == platform.status("staging").api_url
    finally:
        platform.down("staging")
