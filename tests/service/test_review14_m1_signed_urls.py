"""Review 14 (m1): a result URL works up to and including its exp second, and not after it (service/signing.py)."""

from __future__ import annotations

from service import signing

SECRET = "secret-secret-secret"
KEY = "results/" + "d" * 32 + "/0.png"


def test_a_result_url_works_through_its_exp_second_and_stops_after_it():
    sig = signing.result_signature(SECRET, KEY, 1_800_000_060)
    assert signing.result_signed_with(SECRET, None, KEY, "1800000060", sig, now=1_800_000_060.0) == "current"
    assert signing.result_signed_with(SECRET, None, KEY, "1800000060", sig, now=1_800_000_060.001) is None
    # the previous secret's URLs expire alike
    old = signing.result_signature("previous-secret-xyz", KEY, 1_800_000_060)
    assert signing.result_signed_with(SECRET, "previous-secret-xyz", KEY, "1800000060", old,
                                      now=1_800_000_060.0) == "previous"
    assert signing.result_signed_with(SECRET, "previous-secret-xyz", KEY, "1800000060", old,
                                      now=1_800_000_061.0) is None


def test_an_exp_with_digits_then_anything_else_is_refused_not_an_error():
    # "1800000060x" starts with a valid exp: only the whole of it being digits makes it one
    sig = signing.result_signature(SECRET, KEY, 1_800_000_060)
    for exp in ("1800000060x", "1800000060 ", "1800000060.5", "18000000601234"):
        assert signing.result_signed_with(SECRET, None, KEY, exp, sig, now=1_700_000_000.0) is None, exp
