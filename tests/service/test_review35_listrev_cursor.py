"""GET /api/jobs takes a cursor only as the service spelled it: base64 decoding forgives a NUL or other junk between
the characters, '=' padding and the unused low bits of the last character, so a changed cursor that decodes to the
same bytes used to be taken, and whether a changed cursor was refused hung on which bits the edit touched (the
route test's flip of the last character passes only for some webhook secrets). On both runtimes."""

from __future__ import annotations

from urllib.parse import quote

from service_testkit import API_TOKEN
from test_review34_clients_auth import ALICE
from test_review35_list_route import _cursor, _get, _insert
from test_review35_own_jobs import fake_runpod, stack  # noqa: F401

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _respelled(cursor: str) -> list[str]:
    """The cursor's other spellings of the same bytes."""
    position, mac = cursor.split(".")
    # 16 MAC bytes are 22 characters: the last one's 4 low bits are padding, unread by the decoder
    last = _ALPHABET[_ALPHABET.index(mac[-1]) ^ 1]
    return [f"{position}.{mac[:-1]}{last}", f"{position}.{mac}==", f"{position[:4]}\x00{position[4:]}.{mac}",
            f"{position}.{mac[:10]}!{mac[10:]}"]


def test_a_cursor_respelled_to_the_same_bytes_is_refused_like_any_changed_one(stack):  # noqa: F811
    _insert(stack, 6, "alice")
    for token in (ALICE, API_TOKEN):
        cursor = _cursor(stack, token, "limit=2")
        taken = _get(stack, token, f"limit=2&cursor={quote(cursor)}")
        assert taken.status == 200 and len(taken.json["jobs"]) == 2, taken.body
        for changed in _respelled(cursor):
            refused = _get(stack, token, f"limit=2&cursor={quote(changed)}")
            assert refused.status == 400 and refused.error["field"] == "cursor", (changed, refused.body)
