"""The `goldgate release` a failed release names to run again is the one that was run: its stacks, its target only
when not the local one, and each path quoted as a shell reads it. Found by a mutation audit: each could be dropped with
every earlier test still passing. The command is read as the release's summary line prints it."""

from __future__ import annotations

import shlex

import goldgate.commands.release as release_commands
from goldgate.cli import build_parser


def _again(*argv: str) -> str:
    return release_commands._release_again(build_parser().parse_args(["release", *argv]))


def test_the_release_named_again_on_the_local_target_names_no_target() -> None:
    assert _again() == "goldgate release"
    assert _again("--target", "local", "--staging", "staging-b") == "goldgate release --staging staging-b"


def test_the_release_named_again_keeps_its_stacks_and_quotes_a_path_with_a_blank() -> None:
    command = _again("--target", "cloud", "--repo", "registry.example/team/worker", "--staging", "staging-eu",
                     "--prod", "prod-eu", "--reports-dir", "/srv/ci/golden reports")
    # Copied into a shell, it runs the same release: the same stacks, the same report directory.
    assert shlex.split(command) == ["goldgate", "release", "--target", "cloud", "--repo", "registry.example/team/worker",
                                    "--staging", "staging-eu", "--prod", "prod-eu",
                                    "--reports-dir", "/srv/ci/golden reports"], command
