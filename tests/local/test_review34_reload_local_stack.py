"""`goldgate reload <stack>` on real local stacks: the stack's secret files applied to its running service with no job
stopped, no deploy and no ledger entry (docs/RUNBOOK.md, "Add or revoke a client", "Rotate the API token"). Before, a
local PROD took a revoked client only by `goldgate down && goldgate up`, which ended every client's jobs in flight (the
drill: 128 of them, each then recovered as failed), and STAGING by a deploy of the same image (a ledger entry). The jobs
are held mid-queue by the ComfyUI emulator's render gate (COMFY_EMULATOR_HOLD_DIR until its `release` file is made),
so nothing here waits on a clock."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest
import yaml
from ci_policy import needs
from processes import processes_naming, wait_until
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands import local as local_commands
from goldgate.commands.local import WORKER_SOURCE
from goldgate.errors import StateError
from goldgate.local import client_tokens, image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir, write_json_atomic
from goldgate.runpod.control import ControlPlaneClient

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "held"}}


def _create(api: httpx.Client, token: str) -> httpx.Response:
    return api.post("/api/queue/create", json=CREATE, headers={"Authorization": f"Bearer {token}"})


def _reload(home: Path, stack: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    """`goldgate reload` as run: its exit code, stdout and stderr."""
    capsys.readouterr()
    code = main(["reload", stack, *extra, "--home", str(home)])
    said = capsys.readouterr()
    return code, said.out, said.err


def _endpoint(platform: LocalPlatform, stack: str) -> tuple[str, int, set[str]]:
    """The stack's RunPod endpoint as RunPod tells it: its id, how many releases it has had, its workers."""
    status = platform.status(stack)
    state = platform.require_running(stack)
    client = ControlPlaneClient(api_key=platform.runpod_api_key(stack),
                                base_url=state["runpod_api_base"].removesuffix("/v2"))
    with client:
        releases = len(client.list_releases(status.endpoint_id).releases)
        workers = {w.id for w in client.list_workers(status.endpoint_id).workers}
    return status.endpoint_id, releases, workers


def _platform(home: Path, stack: str, monkeypatch: pytest.MonkeyPatch, gate: Path | None = None) -> LocalPlatform:
    """A platform over the shipped stacks (with `gate` holding every render), which the CLI's commands use too, and
    `stack` pinned to the working tree's image."""
    endpoint = {"workers_max": 1, "env": {"COMFY_EMULATOR_HOLD_DIR": str(gate)}} if gate else None
    platform = LocalPlatform(home, stacks_file(home, endpoint=endpoint, **{stack: {}}))
    monkeypatch.setattr(local_commands, "_platform", lambda _args: platform)
    StackDir(home, stack).pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    return platform


def test_a_client_revoked_and_reloaded_with_jobs_in_flight_is_refused_while_every_job_completes(
        home, capsys, monkeypatch):
    gate = home / "hold"
    gate.mkdir()  # no `release` file yet: every render waits, so each job stays in flight across the reload
    stack = "prod"  # the drill's stack: PROD took no deploy, so its only way was down and up
    platform = _platform(home, stack, monkeypatch, gate)
    d = StackDir(home, stack)
    web, batch = client_tokens.add_client(d, "web"), client_tokens.add_client(d, "batch")
    platform.up(stack, timeout_s=90)
    try:
        api_url = platform.status(stack).api_url
        host = platform.require_running(stack)["pid"]
        with httpx.Client(base_url=api_url, timeout=30) as api:
            made = {who: _create(api, token) for who, token in
                    (("web", web), ("batch", batch), ("api", platform.api_token(stack)))}
        assert all(r.status_code == 202 for r in made.values()), {k: r.text for k, r in made.items()}
        jobs = {who: r.json()["job_id"] for who, r in made.items()}
        endpoint_before = _endpoint(platform, stack)
        ledger = home / "ledger.jsonl"
        ledger_before = ledger.read_bytes() if ledger.exists() else None

        client_tokens.revoke_client(d, "batch")  # the runaway
        said: list[str] = []
        platform.up(stack, progress=said.append)  # `up` of the running stack names the way to apply it
        assert any(f"apply them with `goldgate reload {stack}`" in line for line in said), said
        assert not any(f"goldgate down {stack} && goldgate up {stack}" in line for line in said), said

        code, out, err = _reload(home, stack, capsys, "--json")
        assert code == 0, err
        result = json.loads(out)
        assert result["changed"] == ["secrets/clients/batch (revoked)"], result
        assert result["settings_not_applied"] is None
        with httpx.Client(base_url=api_url, timeout=30) as api:
            revoked, served = _create(api, batch), _create(api, web)
        assert revoked.status_code == 401 and served.status_code == 202, (revoked.text, served.text)
        jobs["web after"] = served.json()["job_id"]

        # Nothing but the service moved: the same host, endpoint, releases and workers; no ledger entry.
        now = platform.require_running(stack)
        assert now["pid"] == host and now["service_pid"] == result["service_pid"]
        assert _endpoint(platform, stack) == endpoint_before
        assert (ledger.read_bytes() if ledger.exists() else None) == ledger_before
        assert not platform.secrets_changed(stack)

        (gate / "release").touch()  # every job in flight now renders to its end
        with httpx.Client(base_url=api_url, timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token(stack)}"}) as api:
            def settled() -> dict[str, str]:
                return {who: api.get(f"/api/status/{job}").json()["status"] for who, job in jobs.items()}
            assert wait_until(lambda: set(settled().values()) <= {"completed", "failed", "cancelled"}, 120), settled()
            assert settled() == dict.fromkeys(jobs, "completed")
        capsys.readouterr()
        assert main(["stuck", stack, "--older-than", "0", "--json", "--home", str(home)]) == 0  # no recover needed
    finally:
        platform.down(stack)


def test_a_rotated_api_token_reloaded_takes_both_tokens_and_the_api_settings_never_the_endpoints(
        home, capsys, monkeypatch):
    stack = "staging"
    platform = _platform(home, stack, monkeypatch)
    d = StackDir(home, stack)
    platform.up(stack, timeout_s=90)
    try:
        api_url = platform.status(stack).api_url
        old, new = platform.api_token(stack), secrets.token_hex(32)
        d.secret_file("api_token_previous").write_text(old + "\n")  # the runbook's step 1, then step 2
        d.secret_file("api_token").write_text(new + "\n")
        # A service setting edited too, and one of the endpoint's: the reload applies the first, never the second.
        endpoint_before = _endpoint(platform, stack)
        doc = yaml.safe_load(platform.stacks_file.read_text())
        doc["stacks"][stack]["api"]["rate_limits"] = {"create_per_minute": 7, "inputs_per_minute": 7}
        doc["stacks"][stack]["endpoint"]["workers_max"] = doc["stacks"][stack]["endpoint"]["workers_max"] + 1
        platform.stacks_file.write_text(yaml.safe_dump(doc))
        with httpx.Client(base_url=api_url, timeout=30) as api:
            assert api.get("/api/workflows", headers={"Authorization": f"Bearer {new}"}).status_code == 401

        code, out, err = _reload(home, stack, capsys)
        assert code == 0, err
        assert ("applied secrets/api_token (changed), secrets/api_token_previous (added), api.rate_limits"
                in out), out
        assert "changed beyond the API settings a reload applies" in out, out
        assert "`goldgate down staging && goldgate up staging` applies those" in out, out
        assert old not in out + err and new not in out + err
        with httpx.Client(base_url=api_url, timeout=30) as api:
            for token in (old, new):
                assert api.get("/api/workflows", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        served = json.loads((d.root / "service.json").read_text())
        assert (served["create_rate_limit_per_minute"], served["inputs_rate_limit_per_minute"]) == (7, 7)
        assert _endpoint(platform, stack) == endpoint_before  # no release: the endpoint's edit waits, whole
        assert platform.status(stack).spec_changed  # and `status` and `up` still say the section changed

        code, out, _ = _reload(home, stack, capsys)  # again: nothing changed since, and it says so
        assert code == 0 and "no secret file nor API setting changed" in out, out

        # The endpoint's edit undone: what the stack runs is its section again, and nothing says otherwise.
        doc["stacks"][stack]["endpoint"]["workers_max"] -= 1
        platform.stacks_file.write_text(yaml.safe_dump(doc))
        assert not platform.status(stack).spec_changed
    finally:
        platform.down(stack)
    for log in d.logs_dir.iterdir():
        text = log.read_text(errors="replace")
        assert old not in text and new not in text, log


def test_a_refused_file_leaves_the_old_service_serving_and_exits_1_naming_it(home, capsys, monkeypatch):
    stack = "staging"
    platform = _platform(home, stack, monkeypatch)
    d = StackDir(home, stack)
    platform.up(stack, timeout_s=90)
    try:
        state = platform.require_running(stack)
        token = platform.api_token(stack)
        config = (d.root / "service.json").read_text()
        # A rotation half done: the previous token equal to the current one, which the service refuses.
        d.secret_file("api_token_previous").write_text(token + "\n")
        code, out, err = _reload(home, stack, capsys)
        assert code == 1 and out == "", (out, err)
        assert str(d.secret_file("api_token_previous")) in err and "refused its secret files" in err, err
        assert "nothing changed" in err and f"`goldgate reload {stack}` again" in err and token not in err, err
        now = platform.require_running(stack)
        assert (now["pid"], now["service_pid"]) == (state["pid"], state["service_pid"])
        assert (d.root / "service.json").read_text() == config
        with httpx.Client(base_url=state["api_url"], timeout=30) as api:
            assert api.get("/api/workflows", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert platform.secrets_changed(stack)  # `up` still says the files are not applied

        # A client's file the service cannot take (a space inside the token): refused the same way, by its name.
        d.secret_file("api_token_previous").unlink()
        client_tokens.add_client(d, "web")
        (client_tokens.clients_dir(d) / "web").write_text("two words\n")
        code, _, err = _reload(home, stack, capsys)
        assert code == 1 and "clients/web" in err and "two words" not in err, err
        assert platform.require_running(stack)["service_pid"] == state["service_pid"]

        # One deploy or reload at a time: a deploy holding the stack is named, and nothing is sent.
        (client_tokens.clients_dir(d) / "web").unlink()
        with d.deploying() as holder:
            assert holder is None
            with pytest.raises(StateError, match="a deploy to staging .* holds stack staging"):
                platform.reload(stack)
        assert platform.require_running(stack)["service_pid"] == state["service_pid"]

        # A host of an older goldgate (its state.json names no reload signal) is sent nothing: the signal would end it.
        older = {k: v for k, v in platform.require_running(stack).items() if k != "reload"}
        write_json_atomic(d.state_file, older)
        with pytest.raises(StateError, match="older goldgate, which takes no reload"):
            platform.reload(stack)
        assert state["pid"] in processes_naming(str(home))
    finally:
        platform.down(stack)


def test_a_stack_that_is_down_is_refused_it_reads_its_files_at_up(home, capsys):
    StackDir(home, "staging").ensure()  # it has run before: its files are there, its host is not
    capsys.readouterr()
    assert main(["reload", "staging", "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert "stack staging is not up" in err and "it reads its files at `goldgate up staging`" in err, err
    assert main(["reload", "all", "--json", "--home", str(home)]) == 1  # none up: nothing was reloaded
    rows = json.loads(capsys.readouterr().out)
    assert {r["stack"]: r["reloaded"] for r in rows} == {"staging": False, "prod": False}, rows
