"""A result URL handed out while the service's clock ran years ahead (a VM's wrong date, then put right) carried an
`exp` years away: it stayed valid, wherever it was passed on, for the whole excursion. A URL's `exp` lies at most
the longest ttl a URL is handed out for (7 days) ahead: one further ahead is refused, and its holder asks
/api/status for a fresh one. The clock is the harness's injected one."""

from __future__ import annotations

from urllib.parse import urlsplit

from service import signing

SECRET = "whs-unit-secret-0123456789"
KEY = "results/" + "a" * 32 + "/0.png"
NOW = 1_800_000_000
TEN_YEARS_S = 10 * 365 * 86_400
WEEK_S = 604_800


def _signed(exp: int, secret: str = SECRET) -> str:
    return signing.result_signature(secret, KEY, exp)


def test_an_expiry_years_ahead_is_refused_though_its_signature_is_good():
    exp = NOW + TEN_YEARS_S
    assert signing.result_signed_with(SECRET, None, KEY, str(exp), _signed(exp), now=NOW) is None
    assert not signing.verify_result_signature(SECRET, KEY, str(exp), _signed(exp), now=NOW)
    # ... and so is one signed by the previous secret during a rotation
    assert signing.result_signed_with("new-secret-abcdef", SECRET, KEY, str(exp), _signed(exp), now=NOW) is None


def test_the_longest_url_a_stack_hands_out_is_accepted_and_a_minute_of_clock_skew_with_it():
    for exp in (NOW + WEEK_S, NOW + WEEK_S + 60):
        assert signing.result_signed_with(SECRET, None, KEY, str(exp), _signed(exp), now=NOW) == "current"
    exp = NOW + WEEK_S + 61
    assert signing.result_signed_with(SECRET, None, KEY, str(exp), _signed(exp), now=NOW) is None


def test_a_stacks_own_url_ttl_bounds_it_tighter():
    exp = NOW + 3_600 + 60
    assert signing.result_signed_with(SECRET, None, KEY, str(exp), _signed(exp), now=NOW, max_ttl_s=3_600) == "current"
    exp += 1
    assert signing.result_signed_with(SECRET, None, KEY, str(exp), _signed(exp), now=NOW, max_ttl_s=3_600) is None
    # a larger bound than any URL is handed out for is no bound beyond the 7 days
    exp = NOW + TEN_YEARS_S
    assert signing.result_signed_with(SECRET, None, KEY, str(exp), _signed(exp), now=NOW,
                                      max_ttl_s=TEN_YEARS_S * 2) is None


def _result_url(svc, job_id: str) -> tuple[str, str]:
    [result] = svc.call("GET", f"/api/status/{job_id}")[1]["results"]
    url = urlsplit(result["url"])
    return url.path.removeprefix("/api/result/"), url.query


def test_a_url_handed_out_while_the_clock_ran_ten_years_ahead_stops_working_once_it_is_put_right(svc):
    job = svc.create()
    image = svc.put_result(job["job_id"])
    svc.clock[0] += 5
    assert svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))[0] == 200
    svc.clock[0] += TEN_YEARS_S  # the clock jumps a decade ahead; a client reads the status then
    key, query = _result_url(svc, job["job_id"])
    assert svc.call("GET", f"/api/result/{key}", token=None, query=query)[0] == 200
    svc.clock[0] -= TEN_YEARS_S  # NTP puts it right: the URL said "valid until 2036"
    status, body, _ = svc.call("GET", f"/api/result/{key}", token=None, query=query)
    assert status == 403 and body["error"]["code"] == "url_expired_or_invalid"
    key, query = _result_url(svc, job["job_id"])  # what the 403 says to do
    assert svc.call("GET", f"/api/result/{key}", token=None, query=query)[0] == 200
