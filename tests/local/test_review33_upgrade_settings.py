"""A stack whose host goldgate 69e15d2 started, still up after the upgrade that added api.rate_limits (and
api.smart_placement). Its host keeps the settings it read then: its services, each deploy's new one too, run without
the rate limits this checkout's defaults put in force (620 uploads in a minute all answered 201, seen in the drill)
until `goldgate down` and `up`. `status`, `up` and a deploy named only the older code: a deploy "starts staging's
service on this checkout's code" read as if the new limits were in force. They now say the settings are the old ones
too. The state is fabricated as that host wrote it: an older stack host, and the section measured with its
StackSpec, which had neither field (spec_fingerprint of 69e15d2)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.commands import local
from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir, write_json_atomic

KEPT = "keeps the settings it read then"
RESTART = "`goldgate down staging && goldgate up staging` runs this checkout's"


def _as_yesterdays_host_wrote_it(state_file: Path, spec: specs.StackSpec) -> None:
    """state.json as 69e15d2's host wrote it: older code, and the section hashed without the fields added since."""
    state = json.loads(state_file.read_text())
    state["code"]["goldgate/local/stackhost.py"] = hashlib.sha256(b"the stack host of 69e15d2").hexdigest()
    fields = dataclasses.asdict(dataclasses.replace(spec, image=None))
    fields.pop("thresholds")
    fields["storage"].pop("backup_retention_days")
    fields["api"].pop("rate_limits")
    fields["api"].pop("smart_placement")
    state["spec_fingerprint"] = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
    write_json_atomic(state_file, state)


def test_an_upgraded_stack_still_up_says_it_runs_the_old_settings_until_its_restart(
        home: Path, capsys: pytest.CaptureFixture) -> None:
    platform = LocalPlatform(home)  # the shipped stacks file, as the commands below read it
    image = ensure_up(platform, "staging").image  # built and deployed, as `goldgate release` left it
    _as_yesterdays_host_wrote_it(StackDir(home, "staging").state_file, specs.load_local("staging"))
    try:
        said = platform.status("staging").code_changed
        assert said is not None and KEPT in said and "a setting the upgrade added" in said, said
        assert said.index(KEPT) < said.index(RESTART), said  # the restart named after both: it applies both
        assert "local.yaml changed" not in said  # the file is as it was
        assert f"  {'code':<22} its host runs" in local._render_status(platform.status("staging").to_dict())

        told: list[str] = []
        platform.up("staging", told.append)
        assert KEPT in told[1], told

        main(["deploy", "staging", "--home", str(home), "--image", str(image)])
        err = capsys.readouterr().err
        [line] = [line for line in err.splitlines() if line.startswith("… warning: staging:")]
        assert KEPT in line
        assert ("this deploy starts staging's service on this checkout's code, with the settings its host read when it "
                "started, while its host") in line, line
    finally:
        platform.down("staging")

    platform.up("staging")
    assert platform.status("staging").code_changed is None
    platform.down("staging")
