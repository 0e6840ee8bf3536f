"""goldgate's D1 client on an import that fails, against recorded answers (the helpers of
test_review22_d1wire_client.py): the API documents the reason in `error`, wrangler reads `errors`; an answer
carrying it in both must say it once."""

from __future__ import annotations

import httpx
import pytest
from test_review22_d1wire_client import BOOKMARK, DB, SQL, client, documented, envelope

from goldgate.cloudflare.errors import D1OperationFailed

REASON = "Statement too long: SQLITE_TOOBIG"


def test_an_import_failure_given_in_error_and_errors_is_said_once() -> None:
    def answer(body: dict) -> httpx.Response:
        if body["action"] == "poll":
            return envelope({"success": True, "type": "import", "at_bookmark": BOOKMARK, "status": "error",
                             "error": REASON, "errors": [REASON], "messages": []})
        return documented()(body)

    with pytest.raises(D1OperationFailed) as failed:
        client(answer, []).import_sql(DB, SQL)
    assert str(failed.value).count(REASON) == 1, str(failed.value)
