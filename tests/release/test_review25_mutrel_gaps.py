"""Behaviour of the release code written in sessions 20-24 that no test held (a mutation audit, session 25): each
test here failed on a planted mutant that every earlier test let through. In process; no stack is started."""

from __future__ import annotations

from pathlib import Path


def test_a_pulumi_failure_that_wrote_nothing_to_stderr_is_told_by_the_last_line_of_its_output() -> None:
    # No Diagnostics section and an empty stderr (a plugin killed, a CLI cut short): the last line pulumi printed
    # says why, where the exception's class name ("CommandError") says nothing.
    from pulumi.automation import errors as auto_errors
    from pulumi.automation._cmd import CommandResult

    from goldgate.release.deployers.cloud import up_failure

    failed = auto_errors.CommandError(CommandResult(stdout="Updating (prod)\n", stderr="", code=255))
    said = up_failure(failed, ["Updating (prod)", "", "  error: the resource monitor shut down while waiting", ""])
    assert said == "error: the resource monitor shut down while waiting"


def test_a_renamed_workflow_file_is_other_workflows(tmp_path: Path) -> None:
    # The API Worker serves each workflows/<id>.json under its file name: the same bytes under another name are
    # another workflow id, so the hash the build records must tell them apart (image_workflows compares it).
    from goldgate.release.build import workflows_sha256

    body = b'{"id": "txt2img", "version": "1"}'
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "txt2img.json").write_bytes(body)
    (tmp_path / "b" / "txt2img-v2.json").write_bytes(body)
    assert workflows_sha256(tmp_path / "a") != workflows_sha256(tmp_path / "b")


def test_a_builds_ledger_record_carries_the_hash_of_the_workflows_it_baked(tmp_path: Path) -> None:
    # `goldgate build` records BuildResult.to_dict(): without workflows_sha256 there, every cloud deploy of the image
    # would serve whatever workflows its checkout holds (image_workflows: "the ledger records no workflows").
    from goldgate.release.build import BuildResult, identity_for, workflows_sha256

    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "txt2img.json").write_text('{"id": "txt2img"}')
    identity = identity_for(tmp_path, "1", commit="0" * 40)
    digest = "sha256:" + "c" * 64
    record = BuildResult(image=f"registry.test/w@{digest}", release_id=identity.tag, repo="registry.test/w",
                         digest=digest, identity=identity, target="docker").to_dict()
    assert record["workflows_sha256"] == workflows_sha256(tmp_path / "workflows")
