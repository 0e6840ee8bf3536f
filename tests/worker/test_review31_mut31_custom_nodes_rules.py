"""custom_nodes.yaml's rules at their edges, each as `goldgate build` and the Dockerfile's install step read them: a
commit one hex digit short or long, a legitimate ssh:// URL with its user, a folder name that would land outside
custom_nodes/ or be skipped by ComfyUI, node type names with stray blanks, an empty file. Found by a mutation audit:
each rule could be dropped or loosened with every earlier test still passing."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from ci_policy import needs

from images.worker.custom_nodes import CustomNodesError, load_custom_nodes, parse_custom_nodes

URL = "https://example.invalid/team/tiny-node.git"


def _one(**entry: object) -> dict:
    return {"schema": 1, "custom_nodes": [{"url": URL, "commit": "a" * 40, **entry}]}


def _refused(raw: dict) -> str:
    with pytest.raises(CustomNodesError) as caught:
        parse_custom_nodes(raw, "custom_nodes.yaml")
    return str(caught.value)


def test_a_sha_one_digit_short_is_called_abbreviated_and_one_digit_long_is_refused() -> None:
    short = _refused(_one(commit="a" * 39))
    assert "custom_nodes[0] (tiny-node).commit" in short and "abbreviated sha" in short, short
    # 41 hex digits name no git commit (a sha1 has 40): refused, never installed as the pin.
    long = _refused(_one(commit="a" * 41))
    assert "custom_nodes[0] (tiny-node).commit" in long and "40-hex" in long, long


@pytest.mark.parametrize(("commit", "said", "not_said"), [
    ("", "must be the full 40-hex commit sha", "branch or tag"),
    (True, "must be the full 40-hex commit sha", "read as a number"),
])
def test_an_empty_or_yes_no_commit_is_refused_as_what_it_is(commit: object, said: str, not_said: str) -> None:
    message = _refused(_one(commit=commit))
    assert said in message and not_said not in message, message


def test_an_ssh_url_with_its_user_is_accepted_and_http_or_a_url_with_a_blank_is_not() -> None:
    # ssh:// names its login user before `@` (git@host): no credential, the way every host documents its ssh URL.
    [entry] = parse_custom_nodes(_one(url="ssh://git@example.invalid/team/tiny-node.git")).entries
    assert (entry.name, entry.url) == ("tiny-node", "ssh://git@example.invalid/team/tiny-node.git")
    # Plain http can be rewritten on its way to the builder; a blank would split the git command's argument.
    for url in ("http://example.invalid/team/tiny-node.git", "https://example.invalid/team/tiny node.git"):
        assert "git repository URL" in _refused(_one(url=url)), url


def test_a_url_ending_in_a_slash_still_names_the_folder_after_the_repository() -> None:
    [entry] = parse_custom_nodes(_one(url="https://example.invalid/team/tiny-node/")).entries
    assert entry.name == "tiny-node"


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", ".git"])
def test_a_folder_name_outside_custom_nodes_or_one_comfyui_skips_is_refused(name: str) -> None:
    # `..` or `a/b` would install outside custom_nodes/<name>; ComfyUI loads no dot folder.
    message = _refused(_one(name=name))
    assert "custom_nodes[0].name must be a folder name" in message and repr(name) in message, message


@pytest.mark.parametrize("nodes", [[""], [" Tiny Invert"], ["Tiny Invert "], ["Tiny Invert", "Tiny Invert"]])
def test_a_node_type_that_is_empty_padded_or_listed_twice_is_refused(nodes: list[str]) -> None:
    # ComfyUI matches class_type exactly: " Tiny Invert" would vouch for a type no workflow names.
    message = _refused(_one(nodes=nodes))
    assert "custom_nodes[0] (tiny-node).nodes" in message, message
    assert re.search(r"must be a list of node type names|lists a node type twice", message), message


def test_an_empty_custom_nodes_yaml_declares_nothing(tmp_path: Path) -> None:
    path = tmp_path / "custom_nodes.yaml"
    path.write_text("# no custom nodes yet\n")
    nodes = load_custom_nodes(path)
    assert nodes.entries == () and not nodes.declares_anything


@pytest.mark.parametrize(("raw", "said"), [
    ({"custom_nodes": [{"url": URL, "commit": "a" * 40}]}, "expected a mapping with `schema: 1`"),
    ({"schema": 1, "custom_node": [{"url": URL, "commit": "a" * 40}]}, "unknown top-level field(s) custom_node"),
])
def test_a_file_without_its_schema_or_with_a_misspelt_top_level_field_is_refused(raw: dict, said: str) -> None:
    # A misspelt `custom_node:` would otherwise install nothing and check nothing, silently.
    assert said in _refused(raw)


def test_two_entries_whose_folders_differ_only_in_case_are_refused() -> None:
    # On a case-insensitive builder disk both would install into one folder, the second failing or overwriting.
    message = _refused({"schema": 1, "custom_nodes": [
        {"url": "https://example.invalid/a/Tiny-Node.git", "commit": "a" * 40},
        {"url": "https://example.invalid/b/tiny-node.git", "commit": "b" * 40}]})
    assert "two entries install into custom_nodes/tiny-node" in message, message


def test_a_node_type_listed_in_core_nodes_and_by_an_entry_is_refused() -> None:
    message = _refused({**_one(nodes=["Tiny Invert"]), "core_nodes": ["Tiny Invert", "FluxGuidance"]})
    assert "'Tiny Invert' listed both in core_nodes and by a custom node entry" in message, message


def test_a_checkout_without_custom_nodes_yaml_declares_nothing_and_builds_as_before(tmp_path: Path) -> None:
    from goldgate.release.build import check_node_types

    assert not load_custom_nodes(tmp_path / "custom_nodes.yaml").declares_anything
    check_node_types(tmp_path)   # a checkout from before the file: refused for nothing


def test_a_custom_nodes_yaml_that_is_a_folder_or_too_large_is_refused_saying_so(tmp_path: Path) -> None:
    folder = tmp_path / "as-folder" / "custom_nodes.yaml"
    folder.mkdir(parents=True)
    with pytest.raises(CustomNodesError, match=r"custom_nodes\.yaml: not a regular file"):
        load_custom_nodes(folder)
    large = tmp_path / "custom_nodes.yaml"
    large.write_text("schema: 1\n" + "# padding\n" * 110_000)
    with pytest.raises(CustomNodesError, match=r"custom_nodes\.yaml: larger than 1000000 bytes"):
        load_custom_nodes(large)


def test_an_install_into_a_folder_the_base_image_already_has_is_refused_before_any_fetch(tmp_path: Path) -> None:
    from images.worker.custom_nodes import InstallFailed, install

    dest = tmp_path / "custom_nodes"
    (dest / "tiny-node").mkdir(parents=True)
    (dest / "tiny-node" / "__init__.py").write_text("KEEP = True\n")
    nodes = parse_custom_nodes(_one(url="file:///nonexistent/tiny-node.git"))
    with pytest.raises(InstallFailed, match=r"tiny-node exists already .*give the entry another `name`"):
        install(nodes, dest, say=lambda _line: None)
    assert (dest / "tiny-node" / "__init__.py").read_text() == "KEEP = True\n"   # the base image's folder, untouched


def test_the_dockerfile_step_exits_non_zero_on_a_bad_file_and_on_a_misspelt_subcommand(tmp_path: Path,
                                                                                      capsys) -> None:
    from images.worker.custom_nodes import main

    bad = tmp_path / "custom_nodes.yaml"
    bad.write_text("schema: 1\ncustom_nodes:\n  - url: https://example.invalid/a/b.git\n    commit: main\n")
    # Non-zero fails the docker build's RUN step: an image without its custom nodes is never made.
    assert main(["install", str(bad), str(tmp_path / "dest")]) == 1
    assert "custom_nodes: FAILED:" in capsys.readouterr().err
    assert main(["instal", str(bad), str(tmp_path / "dest")]) == 2
    assert "usage: custom_nodes.py install" in capsys.readouterr().err
    assert not (tmp_path / "dest").exists()


@needs(shutil.which("git") is not None, "git")
def test_a_node_installed_under_a_umask_077_is_readable_by_the_worker_user(tmp_path: Path) -> None:
    from images.worker.custom_nodes import install

    source = tmp_path / "tiny-node-src"
    source.mkdir()
    git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
           "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    (source / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "A"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    dest = tmp_path / "custom_nodes"
    saved = os.umask(0o077)   # a builder's umask: the clone's files would be its owner's alone
    try:
        install(parse_custom_nodes(_one(url=f"file://{source}", commit=commit, name="tiny-node")), dest,
                say=lambda _line: None)
    finally:
        os.umask(saved)
    # ComfyUI runs as uid 10001, not the root that installed the node: it must read every file and enter every folder.
    for path in [dest / "tiny-node", *(dest / "tiny-node").rglob("*")]:
        mode = path.stat().st_mode
        assert mode & stat.S_IROTH and (not path.is_dir() or mode & stat.S_IXOTH), (path, oct(mode))
        assert not mode & stat.S_IWOTH, (path, oct(mode))
