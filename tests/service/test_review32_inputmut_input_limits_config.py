"""Mutation audit of the service's input image limits (service/config.py max_input_bytes, max_input_pixels): a limit
the GPU worker would not honour, or no limit at all, is refused when the service starts, naming the setting."""

from __future__ import annotations

import pytest
from service_testkit import make_config

from service.config import MAX_INPUT_BYTES, ConfigError


def test_an_upload_limit_over_what_the_worker_reads_is_refused_naming_both() -> None:
    assert make_config(max_input_bytes=MAX_INPUT_BYTES).max_input_bytes == 20 * 1024 * 1024
    with pytest.raises(ConfigError, match=r"max_input_bytes must be at most 20971520 \(20 MiB, what the GPU worker "
                                          r"reads of an input image\), got 20971521"):
        make_config(max_input_bytes=MAX_INPUT_BYTES + 1)


@pytest.mark.parametrize("pixels", [0, -1])
def test_a_pixel_limit_that_is_not_positive_is_refused(pixels: int) -> None:
    with pytest.raises(ConfigError, match="service config max_input_pixels must be a positive integer"):
        make_config(max_input_pixels=pixels)

