"""GET /api/jobs' `created_after` at its edges, on both runtimes: a value with a NUL, another control character or a
non-ASCII one is a 400 naming it (fromisoformat took a trailing NUL, `...:00%00`, and strip() a tab, a newline or a
Unicode space around the time, so each used to pass as the time alone); a valid time whose offset puts
it before year 1 or after year 9999 in UTC lists every job, or none (it used to be refused as "not an ISO 8601 time"),
as a naive time in 9999's last millisecond lists none."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from service_testkit import API_TOKEN
from test_review34_clients_auth import ALICE
from test_review35_list_route import _get, _insert
from test_review35_own_jobs import fake_runpod, stack  # noqa: F401

REFUSED = ["2027-01-15T08:00:00Z\x00junk", "2027-01-15T08:00:00\x00", "2027-01-15T08:00:00Z\t", "2027-01-15T08:00:00\n",
           "2027-01-15T08:00:00Z\u00a0", "\u20002027-01-15"]


@pytest.mark.parametrize("value", REFUSED, ids=[repr(v) for v in REFUSED])
def test_a_created_after_with_a_control_or_non_ascii_character_is_a_400_naming_it(stack, value):  # noqa: F811
    _insert(stack, 2, "alice")
    refused = _get(stack, ALICE, f"created_after={quote(value)}")
    assert refused.status == 400 and refused.error["code"] == "invalid_query", refused.body
    assert refused.error["field"] == "created_after", refused.body


def test_a_time_beyond_datetimes_years_in_utc_lists_every_job_or_none(stack):  # noqa: F811
    ids = _insert(stack, 3, "alice")
    for token in (ALICE, API_TOKEN):
        for value, listed in (("0001-01-01T00:00:00+14:00", set(ids)), ("0001-01-01T00:00:00+00:01", set(ids)),
                              ("9999-12-31T23:59:59-12:00", set()), ("9999-12-31T23:59:59.9995", set())):
            answer = _get(stack, token, f"created_after={quote(value)}")
            assert answer.status == 200, (value, answer.body)
            assert {job["job_id"] for job in answer.json["jobs"]} == listed and answer.json["next_cursor"] is None
