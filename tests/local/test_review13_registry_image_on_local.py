"""`goldgate deploy staging --image REPO@sha256:...` with the digest `goldgate build --repo` printed, on the local target
(the default): a local worker runs only a snapshot of this home. The deploy pinned the registry image, said "rollout
complete" and exited 0, and every job then stayed queued while each worker failed to start. It is refused now,
before the pin moves, in one line that says where a pushed image goes; and a pin of one that an older goldgate left
is refused by `up` before it starts a host."""

from __future__ import annotations

import json

import httpx
import pytest
from processes import processes_naming
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import ensure_up
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

PUSHED = "registry.example.com/acme/goldgate-worker@sha256:" + "b" * 64


def test_a_registry_image_is_refused_by_a_local_stack_before_its_pin_moves(home, capsys) -> None:
    platform = LocalPlatform(home, stacks_file(home, staging={}))
    try:
        before = ensure_up(platform, "staging")
        capsys.readouterr()
        code = main(["deploy", "staging", "--image", PUSHED, "--home", str(home)])
        out, err = capsys.readouterr()
        assert code == 1, (out, err)
        assert out == ""
        line = err.strip()
        assert "\n" not in line and line.startswith(f"goldgate: error: refusing to deploy {PUSHED} to the local "
                                                    "stack staging"), err
        assert "`--target cloud`" in line and "local/worker@sha256:" in line
        # Nothing moved: the pin, what the stack serves, and the ledger (no deploy recorded).
        assert platform.pinned_image("staging") == before.image
        assert platform.status("staging").image == before.image
        ledger = home / "ledger.jsonl"
        kinds = [json.loads(x)["kind"] for x in ledger.read_text().splitlines()] if ledger.exists() else []
        assert "deploy" not in kinds
        # The stack still takes jobs on its image.
        state = platform.require_running("staging")
        with httpx.Client(base_url=state["api_url"], timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token('staging')}"}) as client:
            created = client.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                              "inputs": {"prompt": "a lighthouse"}})
            assert created.status_code == 202, created.text
            job = client.get(f"/api/status/{created.json()['job_id']}").json()
            assert job["worker_image_tag"] == before.image
    finally:
        platform.down("staging")


@pytest.mark.parametrize("pinned", [PUSHED, 5])
def test_up_refuses_a_pin_no_local_worker_can_run_and_starts_no_host(home, capsys, pinned) -> None:
    # What an older goldgate's `deploy` left (a registry image), or a hand edit: the stack came up, said "up", and
    # every job stayed queued while each worker failed to start.
    d = StackDir(home, "staging")
    d.root.mkdir(parents=True)
    d.pin_file.write_text(json.dumps({"image": pinned, "reason": "deploy", "pinned_at": "2026-11-01T00:00:00Z"}))
    kept = d.pin_file.read_bytes()
    code = main(["up", "staging", "--home", str(home)])
    out, err = capsys.readouterr()
    assert code == 1 and out == "", (out, err)
    line = err.strip().splitlines()[-1]
    shown = repr(pinned) if isinstance(pinned, str) else str(pinned)
    assert line.startswith(f"goldgate: error: stack staging is pinned to {shown}, no local snapshot"), err
    assert f"remove {d.pin_file} and run `goldgate up staging` again" in line and "characters cut" not in line
    assert processes_naming(str(home)) == {}  # no host started
    assert not d.state_file.exists() and d.pin_file.read_bytes() == kept
    # Its advice works: without the pin, STAGING comes up on the working tree's image.
    d.pin_file.unlink()
    try:
        assert main(["up", "staging", "--home", str(home)]) == 0
        assert image_store.is_local_ref(LocalPlatform(home).status("staging").image)
    finally:
        LocalPlatform(home).down("staging")
