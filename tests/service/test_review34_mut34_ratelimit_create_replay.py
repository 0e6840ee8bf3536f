"""A create over its token's rate limit that carries an Idempotency-Key is answered its job only when it replays a
create that was taken; one whose key or body could never be a replay (a key the API refuses, a body that is no
JSON) is answered the 429 `rate_limited` every create over the limit gets, telling the runaway client to slow
down, not a 400 about its key that it would retry at the same rate."""

from __future__ import annotations

from test_review33_ratelimit_routes import CREATES, _create, _jobs, _rate_limited, limited  # noqa: F401


def test_a_create_over_the_limit_whose_key_or_body_is_no_replay_is_429(limited):  # noqa: F811
    svc = limited()
    assert [_create(svc, prompt=f"p{n}")[0] for n in range(CREATES)] == [202] * CREATES
    _rate_limited(_create(svc, key="not a key: \"quoted\""), "POST /api/queue/create", CREATES)
    status, body, headers = svc.call("POST", "/api/queue/create", raw=b"{not json", headers={"idempotency-key": "k-1"})
    _rate_limited((status, body, headers), "POST /api/queue/create", CREATES)
    assert _jobs(svc) == CREATES and len(svc.fake.runs) == CREATES
