"""A bound of zero seconds is no bound a worker can run with: every job would fail on it at once (ComfyUI "not ready
after 0 s", or the prompt withdrawn before its first poll). The worker refuses to start and names the variable."""

from __future__ import annotations

import pytest
from worker_harness import worker_env

from images.worker.config import ConfigError, load_config


@pytest.mark.parametrize("name", ["COMFY_JOB_TIMEOUT_S", "COMFY_READY_TIMEOUT_S"])
@pytest.mark.parametrize("value", ["0", "0.0", "-5"])
def test_a_bound_of_zero_or_less_is_refused_naming_the_variable(name, value, tmp_path):
    env = worker_env("http://127.0.0.1:8188", None, tmp_path, **{name: value})
    with pytest.raises(ConfigError, match=f"{name}=.* must be between 0 and 86400 seconds"):
        load_config(env)


def test_the_largest_bound_is_accepted(tmp_path):
    config = load_config(worker_env("http://127.0.0.1:8188", None, tmp_path, COMFY_JOB_TIMEOUT_S="86400"))
    assert config.comfy_job_timeout_s == 86400
