"""tests/ has no __init__.py: pytest imports each test file and helper by its basename, so two files of one name
cannot both be imported, and the whole run fails at collection (a rename that missed another directory's twin)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def test_every_test_module_name_is_unique_across_the_test_directories():
    here = Path(__file__).parent
    names = Counter(p.name for p in here.rglob("*.py")
                    if p.name != "conftest.py" and "node_modules" not in p.parts)
    assert sorted(name for name, count in names.items() if count > 1) == []
