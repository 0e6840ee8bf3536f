"""The API token goes only to the API's own origin: its scheme, host and port, not its host alone (session 28
mutation audit of goldgate.release.golden.same_origin, which the golden runner's and `goldgate demo`'s result
downloads ask). The tests so far used links on another host, so a check of the host and port alone passed them:
a status answer's `http://` link on the API's own https host would have carried the bearer token in the clear."""

from __future__ import annotations

import pytest

from goldgate.release.golden import same_origin

API = "https://api.example.com"


@pytest.mark.parametrize("url", [
    "https://api.example.com/api/result/results/j/0.png",
    "https://api.example.com/api/result/results/j/0.png?exp=1&sig=00",
])
def test_a_link_on_the_apis_own_origin_is_the_apis(url: str) -> None:
    assert same_origin(url, API)
    assert same_origin(url, API + "/")


@pytest.mark.parametrize("url", [
    "http://api.example.com/api/result/results/j/0.png",      # the same host, in the clear
    "https://api.example.com:8443/api/result/results/j/0.png",  # another port
    "https://results.example.com/api/result/results/j/0.png",  # another host
    "https://api.example.com.evil.example/api/result/x.png",
])
def test_a_link_on_another_scheme_port_or_host_is_not(url: str) -> None:
    assert not same_origin(url, API)
