"""A number far below its field's minimum is quoted short, as one far above its maximum is
(test_review24_fuzz_stack_files): a 4,000-digit value written in a stack file is no message."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.errors import SpecError
from goldgate.spec import STACKS_DIR, load_local


def test_a_number_far_below_its_fields_minimum_is_quoted_short(tmp_path: Path) -> None:
    text = (STACKS_DIR / "local.yaml").read_text(encoding="utf-8")
    assert "workers_max: 3" in text
    file = tmp_path / "local.yaml"
    file.write_text(text.replace("workers_max: 3", "workers_max: -" + "9" * 4_000, 1), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_local("staging", file)
    message = str(err.value)
    assert message.startswith(f"{file}: stacks.staging.endpoint.workers_max: <an integer of 4000 digits> is below "
                              "the minimum "), message[:300]
    assert len(message) < 300
