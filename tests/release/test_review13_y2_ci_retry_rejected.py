"""CI could not pass `promote --retry-rejected`: once a digest PROD found wanting was fixed on PROD, the operator had
to promote it by hand, outside the release lock and the ledger branch. A dispatch of the release workflow now has a
`retry_rejected` box (off by default); the promote step passes the flag only when it is ticked, reading it from its
env (never pasted into the script). A push, or a dispatch that leaves it off, never retries a rejected digest.
The step's script is taken out of the YAML and run with bash and a stub goldgate, as in test_ci_workflows."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ci_workflows import IMAGE, _bash, _env, _promote_step, _resolve, _stub_bin, _workflow


def _dispatch_inputs() -> dict:
    workflow = _workflow("release.yml")
    on = workflow.get("on", workflow.get(True))   # YAML 1.1 reads the bare key `on` as true
    return on["workflow_dispatch"]["inputs"]


def _promote_argv(tmp_path: Path, retry_rejected: str) -> tuple[int, list[str], str]:
    """Run the promote step as GitHub would with `inputs.retry_rejected` evaluated to `retry_rejected` (GitHub gives
    a boolean input as "true" / "false", and nothing on a push); returns its exit status, goldgate's argv, stderr."""
    argv = tmp_path / "argv"
    bin_dir = _stub_bin(tmp_path, goldgate=f'printf "%s\\n" "$@" > "{argv}"\necho \'{{"ok": true}}\'\n')
    step = _promote_step()
    context = {"needs.build.outputs.image": IMAGE, "env.LEDGER_SAVE": "", "inputs.retry_rejected": retry_rejected}
    env = _env(tmp_path, bin_dir, **{k: _resolve(str(v), context) for k, v in (step.get("env") or {}).items()})
    proc = _bash(step["run"], tmp_path, env)
    return proc.returncode, argv.read_text().splitlines() if argv.exists() else [], proc.stdout + proc.stderr


def test_a_dispatch_offers_retry_rejected_off_by_default() -> None:
    box = _dispatch_inputs()["retry_rejected"]
    assert box["type"] == "boolean" and box["default"] is False and box.get("required", False) is False
    assert "--retry-rejected" in box["description"]


def test_the_promote_step_retries_a_rejected_digest_only_when_the_dispatch_asked(tmp_path: Path) -> None:
    code, argv, out = _promote_argv(tmp_path, "true")
    assert code == 0, out
    assert argv[0] == "promote" and argv[argv.index("--image") + 1] == IMAGE and "--retry-rejected" in argv, argv
    assert argv[-1] == "--json"


@pytest.mark.parametrize("given", ["false", ""], ids=["dispatch-left-off", "push"])
def test_a_push_or_a_dispatch_left_off_never_retries(tmp_path: Path, given: str) -> None:
    code, argv, out = _promote_argv(tmp_path, given)
    assert code == 0, out
    assert argv == ["promote", "--image", IMAGE, "--json"]


def test_an_input_that_is_not_a_boolean_stops_the_step_before_goldgate_runs(tmp_path: Path) -> None:
    code, argv, out = _promote_argv(tmp_path, "yes; rm -rf ~")
    assert code != 0 and argv == []
    assert "retry_rejected is 'yes; rm -rf ~', not true or false" in out


def test_the_input_reaches_the_step_through_its_env_not_its_script() -> None:
    step = _promote_step()
    assert step["env"]["RETRY_REJECTED"] == "${{ inputs.retry_rejected }}"
    assert "inputs." not in step["run"] and "$RETRY_REJECTED" in step["run"]
