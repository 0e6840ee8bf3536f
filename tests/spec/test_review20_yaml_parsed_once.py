"""A stack file read again unchanged is not parsed again (goldgate.spec.read_yaml keeps the parse of each text);
what a caller gets is its own copy, and an edited file is parsed anew."""

from __future__ import annotations

import pytest

from goldgate.errors import SpecError
from goldgate.spec import _parsed, read_yaml


def test_an_unchanged_file_is_parsed_once_and_each_reader_gets_its_own_copy(tmp_path):
    path = tmp_path / "local.yaml"
    path.write_text("staging:\n  endpoint:\n    workers_max: 3\n  tags: [a, b]\n")
    _parsed.cache_clear()
    first = read_yaml(path)
    first["staging"]["endpoint"]["workers_max"] = 99     # a caller that changes what it read
    first["staging"]["tags"].append("c")
    second = read_yaml(path)
    assert second == {"staging": {"endpoint": {"workers_max": 3}, "tags": ["a", "b"]}}
    assert _parsed.cache_info().misses == 1 and _parsed.cache_info().hits == 1

    path.write_text("staging:\n  endpoint:\n    workers_max: 4\n")   # edited: the new text is what counts
    assert read_yaml(path) == {"staging": {"endpoint": {"workers_max": 4}}}


def test_a_file_that_does_not_parse_is_refused_every_time(tmp_path):
    path = tmp_path / "local.yaml"
    path.write_text("staging: [unclosed\n")
    for _ in range(2):
        with pytest.raises(SpecError, match=r"is not valid YAML at line 2"):
            read_yaml(path)
    path.write_text("staging:\n  a: 1\n  a: 2\n")   # a key given twice stays an error (Pulumi's YAML 1.2)
    for _ in range(2):
        with pytest.raises(SpecError):
            read_yaml(path)
