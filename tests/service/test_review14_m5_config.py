"""Service config refusals at their exact bounds: a value one past a limit is refused by name, the limit itself
taken; a JSON true is no integer; an empty required string is as missing as an absent one."""

from __future__ import annotations

import pytest
from service_testkit import make_config

from service.config import SECRET_MIN_CHARS, ConfigError


@pytest.mark.parametrize("name", ["execution_timeout_ms", "ttl_ms", "max_body_bytes", "signed_url_ttl_s",
                                  "gpu_count"])
def test_a_zero_where_a_positive_integer_is_needed_is_refused_by_name(name):
    # max_body_bytes 0 refuses every create; signed_url_ttl_s 0 hands out result URLs that are dead on arrival
    with pytest.raises(ConfigError, match=f"{name} must be a positive integer"):
        make_config(**{name: 0})
    assert getattr(make_config(**{name: 1}), name) == 1


def test_a_signed_url_ttl_one_second_past_seven_days_is_refused():
    with pytest.raises(ConfigError, match="signed_url_ttl_s must be at most 604800"):
        make_config(signed_url_ttl_s=604_801)


@pytest.mark.parametrize("key", ["api_token", "webhook_secret"])
def test_a_secret_one_character_short_of_the_minimum_is_refused_and_the_minimum_taken(key):
    other = {"api_token": "webhook_secret", "webhook_secret": "api_token"}[key]
    with pytest.raises(ConfigError, match=f"{key} must be at least {SECRET_MIN_CHARS} characters"):
        make_config(**{key: "k" * (SECRET_MIN_CHARS - 1)})
    assert getattr(make_config(**{key: "k" * SECRET_MIN_CHARS, other: "o" * 40}), key) == "k" * SECRET_MIN_CHARS


@pytest.mark.parametrize("name", ["max_body_bytes", "gpu_count", "port", "retention_keep_days"])
def test_a_json_boolean_is_not_taken_as_an_integer(name):
    # Python's True is 1: max_body_bytes true would be a one-byte limit that refuses every create
    with pytest.raises(ConfigError, match=f"{name} must be an integer, got bool"):
        make_config(**{name: True})


@pytest.mark.parametrize("name", ["stack", "runpod_api_key"])
def test_an_empty_required_string_is_refused_as_missing(name):
    with pytest.raises(ConfigError, match=f"missing required key\\(s\\): {name}"):
        make_config(**{name: ""})


@pytest.mark.parametrize("price", [float("nan"), float("inf"), -0.0001])
def test_a_gpu_price_that_is_no_non_negative_finite_number_is_refused(price):
    # json.loads takes NaN and Infinity in a config file; a job's cost would be NaN or inf in every metrics report
    with pytest.raises(ConfigError, match="price_per_gpu_second must be a non-negative number"):
        make_config(price_per_gpu_second=price)
    assert make_config(price_per_gpu_second=0).price_per_gpu_second == 0.0
